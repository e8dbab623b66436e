/* routes.h - the handlers of api_routes.c, one file per domain (r_<domain>.c). */
#ifndef API_ROUTES_H
#define API_ROUTES_H

struct api_req;

void r_ops_healthz(struct api_req *r);
void r_ops_readyz(struct api_req *r);
void r_ops_metrics(struct api_req *r);

#endif
