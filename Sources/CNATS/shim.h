// The official NATS C client (libnats, Debian's libnats-dev), seen from Swift as module CNATS.
// Nothing is declared here: ShmMailboxNATS wraps the library's own API thinly.
#include <nats/nats.h>
