/* Empty: upstream meson.build link_whole()s a static library of every dependency; here the system library is linked through the dependency instead. */
int auralink_mediasoup_worker_stub_libuv(void);
int auralink_mediasoup_worker_stub_libuv(void) { return 0; }
