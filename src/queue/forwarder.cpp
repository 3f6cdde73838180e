#include "queue/forwarder.h"
