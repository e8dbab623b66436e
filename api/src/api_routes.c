/* api_routes.c - every endpoint of chat-api: one row each (method, pattern, flags, handler,
 * name). The router (http/api_router.c) matches, answers 404/405/413 and checks the flags before
 * a handler runs; a new endpoint is a row here and a handler in routes/r_<domain>.c. */
#include "api.h"
#include "routes/routes.h"

const struct api_route api_routes[] = {
    {API_GET, "/healthz", 0, r_ops_healthz, "healthz"},
    {API_GET, "/readyz", 0, r_ops_readyz, "readyz"},
    {API_GET, "/metrics", 0, r_ops_metrics, "metrics"},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
