/* The protocol's error codes (protocol.md, Errors) and their mapping from
 * the plugin ABI's EIM_E* codes. */
#ifndef EIM_ERRORS_H
#define EIM_ERRORS_H

typedef enum {
  EIM_PE_BAD_REQUEST,
  EIM_PE_UNAUTHORIZED,
  EIM_PE_FORBIDDEN,
  EIM_PE_NOT_FOUND,
  EIM_PE_CONFLICT,
  EIM_PE_PAYLOAD_TOO_LARGE,
  EIM_PE_REJECTED,
  EIM_PE_RATE_LIMITED,
  EIM_PE_UNAVAILABLE,
  EIM_PE_INTERNAL
} eim_perr;

const char *eim_errcode_name(int perr);
int eim_errcode_http(int perr);
/* Maps an EIM_E* code (negative) to a protocol error. */
eim_perr eim_perr_from_code(int code);

#endif
