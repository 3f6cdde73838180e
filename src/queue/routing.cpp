#include "queue/routing.h"
