#include "CBenchShim.h"

#include <fcntl.h>

mqd_t shim_mq_open(const char *name, int oflag, mode_t mode, long maxmsg, long msgsize) {
    if (oflag & O_CREAT) {
        struct mq_attr attr = {0};
        attr.mq_maxmsg = maxmsg;
        attr.mq_msgsize = msgsize;
        return mq_open(name, oflag, mode, &attr);
    }
    return mq_open(name, oflag);
}
