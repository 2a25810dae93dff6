#include "errors.h"

#include "exampleim/plugin.h"

static const struct {
  const char *name;
  int http;
} table[] = {
    {"bad_request", 400}, {"unauthorized", 401},      {"forbidden", 403},
    {"not_found", 404},   {"conflict", 409},          {"payload_too_large", 413},
    {"rejected", 422},    {"rate_limited", 429},      {"unavailable", 503},
    {"internal", 500},
};

const char *eim_errcode_name(int perr) {
  if (perr < 0 || perr > EIM_PE_INTERNAL) perr = EIM_PE_INTERNAL;
  return table[perr].name;
}

int eim_errcode_http(int perr) {
  if (perr < 0 || perr > EIM_PE_INTERNAL) perr = EIM_PE_INTERNAL;
  return table[perr].http;
}

eim_perr eim_perr_from_code(int code) {
  switch (code) {
    case EIM_EINVAL: return EIM_PE_BAD_REQUEST;
    case EIM_ENOTFOUND: return EIM_PE_NOT_FOUND;
    case EIM_ECONFLICT: return EIM_PE_CONFLICT;
    case EIM_EFORBIDDEN: return EIM_PE_FORBIDDEN;
    case EIM_EUNAVAIL: return EIM_PE_UNAVAILABLE;
    case EIM_EAUTH:
    case EIM_EEXPIRED: return EIM_PE_UNAUTHORIZED;
    case EIM_ETOOBIG: return EIM_PE_PAYLOAD_TOO_LARGE;
    default: return EIM_PE_INTERNAL;
  }
}
