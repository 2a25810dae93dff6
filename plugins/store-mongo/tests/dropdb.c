/* store-mongo-test-dropdb URI DATABASE: drops a scratch database the tests
 * made, so that each run starts empty (FerretDB v1 answers most queries by
 * scanning, so leftovers would slow later runs down). */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  mongoc_client_t *client = NULL;
  mongoc_database_t *db = NULL;
  bson_error_t e;
  int rc = 1;

  if (argc != 3 || strncmp(argv[2], "exampleim_", 10) != 0) {
    fprintf(stderr, "usage: %s URI exampleim_DATABASE\n", argv[0]);
    return 2;
  }
  mongoc_init();
  mongoc_log_set_handler(NULL, NULL);
  if ((client = mongoc_client_new(argv[1])) == NULL) {
    fprintf(stderr, "bad URI\n");
    goto cleanup;
  }
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  db = mongoc_client_get_database(client, argv[2]);
  if (!mongoc_database_drop_with_opts(db, NULL, &e)) {
    fprintf(stderr, "dropping %s: %s\n", argv[2], e.message);
    goto cleanup;
  }
  rc = 0;

cleanup:
  mongoc_database_destroy(db);
  mongoc_client_destroy(client);
  mongoc_cleanup();
  return rc;
}
