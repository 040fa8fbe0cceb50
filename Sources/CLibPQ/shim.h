// PostgreSQL's client library, libpq (Debian's libpq-dev).
#include <libpq-fe.h>
