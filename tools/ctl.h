/* tools/ctl.h - chatctl's subcommands that live in files of their own.
 * Each takes the subcommand's argv (argv[0] = "chatctl NAME") and returns the exit status:
 * 0 ok (or --help), 1 the operation failed, 2 usage or configuration error. */
#ifndef CHAT_TOOLS_CTL_H
#define CHAT_TOOLS_CTL_H

/* chatctl topics: create the Kafka topics when missing and check them (ctl_topics.c). */
int ctl_topics_main(int argc, char **argv);
/* chatctl migrate: apply the schema migrations of db/migrations to a database (ctl_migrate.c). */
int ctl_migrate_main(int argc, char **argv);

/* chatctl admin / sanction / lift: site administration on the database (ctl_admin.c). */
int ctl_admin_main(int argc, char **argv);
int ctl_sanction_main(int argc, char **argv);
int ctl_lift_main(int argc, char **argv);

#endif
