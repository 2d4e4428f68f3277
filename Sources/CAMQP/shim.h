#ifndef MYROOM_CAMQP_SHIM_H
#define MYROOM_CAMQP_SHIM_H
// Debian 12 ships rabbitmq-c 0.11: headers without the rabbitmq-c/ prefix.
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>

// amqp_login is variadic; Swift cannot call it. PLAIN login with user and password.
static inline amqp_rpc_reply_t mr_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                   int channel_max, int frame_max, int heartbeat,
                                                   const char *user, const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}
static inline amqp_rpc_reply_t mr_amqp_login_plain_with_properties(amqp_connection_state_t state, const char *vhost,
                                                   int channel_max, int frame_max, int heartbeat,
                                                   const amqp_table_t *properties,
                                                   const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}
#endif
