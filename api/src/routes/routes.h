/* routes.h - the handlers of api_routes.c, one file per domain (r_<domain>.c). A route's
 * r_*_check runs before its limits count the request: it decodes and checks the body (the
 * handler then relies on r->ab / r->cf) and answers 400 on its own. */
#ifndef API_ROUTES_H
#define API_ROUTES_H

struct api_req;

/* r_ops.c */
void r_ops_healthz(struct api_req *r);
void r_ops_readyz(struct api_req *r);
void r_ops_metrics(struct api_req *r);
void r_ops_config(struct api_req *r);
/* r_auth.c */
void r_auth_register_check(struct api_req *r);
void r_auth_register(struct api_req *r);
void r_auth_login_check(struct api_req *r);
void r_auth_login(struct api_req *r);
void r_auth_refresh_check(struct api_req *r);
void r_auth_refresh(struct api_req *r);
void r_auth_logout_check(struct api_req *r);
void r_auth_logout(struct api_req *r);
/* r_users.c */
void r_users_me(struct api_req *r);
void r_users_nickname_check(struct api_req *r);
void r_users_nickname(struct api_req *r);
void r_users_password_check(struct api_req *r);
void r_users_password(struct api_req *r);
void r_users_logins(struct api_req *r);
/* r_messages.c */
void r_messages_send_check(struct api_req *r);
void r_messages_send(struct api_req *r);
/* r_messages_mod.c (the body check of an edit is r_messages_send_check's: a send's text) */
void r_messages_delete(struct api_req *r);
void r_messages_edit(struct api_req *r);
/* r_pins.c */
void r_pins_list(struct api_req *r);
void r_pins_add(struct api_req *r);
void r_pins_remove(struct api_req *r);
void r_messages_report_check(struct api_req *r);
void r_messages_report(struct api_req *r);
/* r_util.c: the body check of the rooms, moderation and admin routes (a JSON object, r->doc) */
void r_json_body_check(struct api_req *r);
/* r_rooms.c */
void r_rooms_directory(struct api_req *r);
void r_rooms_create(struct api_req *r);
void r_rooms_get(struct api_req *r);
void r_rooms_update(struct api_req *r);
void r_rooms_delete(struct api_req *r);
void r_rooms_join(struct api_req *r);
void r_rooms_leave(struct api_req *r);
void r_rooms_grant(struct api_req *r);
void r_rooms_favourite(struct api_req *r);
void r_rooms_mine(struct api_req *r);
/* r_members.c */
void r_rooms_members(struct api_req *r);
void r_rooms_member_role(struct api_req *r);
void r_rooms_member_remove(struct api_req *r);
/* r_invites.c */
void r_invites_create(struct api_req *r);
void r_invites_list(struct api_req *r);
void r_invites_revoke(struct api_req *r);
void r_invites_redeem(struct api_req *r);
void r_rooms_direct(struct api_req *r);
/* r_moderation.c */
void r_rooms_moderate(struct api_req *r);
void r_rooms_unmoderate(struct api_req *r);
void r_rooms_sanctions(struct api_req *r);
void r_site_sanction(struct api_req *r);
void r_site_unsanction(struct api_req *r);
/* r_history.c */
void r_history_list(struct api_req *r);
void r_history_read_check(struct api_req *r);
void r_history_read(struct api_req *r);
/* r_admin.c */
void r_admin_revoke_check(struct api_req *r);
void r_admin_revoke(struct api_req *r);
void r_admin_rooms(struct api_req *r);
void r_admin_room_messages(struct api_req *r);
void r_admin_users(struct api_req *r);
void r_admin_role(struct api_req *r);
void r_admin_ban(struct api_req *r);
void r_admin_unban(struct api_req *r);
void r_admin_sessions(struct api_req *r);
void r_admin_reports(struct api_req *r);
void r_admin_report_resolve(struct api_req *r);
void r_admin_audit(struct api_req *r);
void r_admin_announce(struct api_req *r);

#endif
