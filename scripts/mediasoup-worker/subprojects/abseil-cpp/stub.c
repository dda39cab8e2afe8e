/* Empty: upstream meson.build link_whole()s a static library of every dependency; here the system library is linked through the dependency instead. */
int auralink_mediasoup_worker_stub_abseil_cpp(void);
int auralink_mediasoup_worker_stub_abseil_cpp(void) { return 0; }
