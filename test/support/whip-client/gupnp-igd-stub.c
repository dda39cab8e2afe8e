/*
 * Stand-in for libgupnp-igd-1.0.so.4, used only by the whip-client test harness.
 *
 * Debian bookworm's whip-client links libsoup2, while libnice links the real
 * gupnp-igd -> gupnp-1.6 -> libsoup3; libsoup aborts when both are in one
 * process. Built with SONAME libgupnp-igd-1.0.so.4 and found first via
 * LD_LIBRARY_PATH, this stub satisfies libnice's four imports without pulling
 * in gupnp (and so libsoup3). gupnp_simple_igd_thread_new() returns NULL,
 * which libnice treats as "UPnP unavailable" and skips port mapping.
 *
 * No GLib headers needed: GType is a gsize and G_TYPE_OBJECT is fundamental 20 << 2.
 */
#include <stddef.h>

typedef size_t GType;

#define STUB_G_TYPE_OBJECT ((GType)(20 << 2))

__attribute__((visibility("default"))) GType gupnp_simple_igd_get_type(void) { return STUB_G_TYPE_OBJECT; }

__attribute__((visibility("default"))) void *gupnp_simple_igd_thread_new(void) { return NULL; }

__attribute__((visibility("default"))) void gupnp_simple_igd_add_port(void *self, const char *protocol,
    unsigned int external_port, const char *local_ip, unsigned int local_port, unsigned int lease_duration,
    const char *description) {
  (void)self; (void)protocol; (void)external_port; (void)local_ip; (void)local_port; (void)lease_duration;
  (void)description;
}

__attribute__((visibility("default"))) void gupnp_simple_igd_remove_port_local(void *self, const char *protocol,
    const char *local_ip, unsigned int local_port) {
  (void)self; (void)protocol; (void)local_ip; (void)local_port;
}
