// The HTTP half of the protocol (/api/v1). Every failure becomes an ApiError
// carrying the server's error code, or `unreachable` when no answer came.

export class ApiError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

const TIMEOUT_MS = 15000;

export class Api {
  constructor() {
    this.token = null;
    // Called with the error when an authenticated call gets 401, so the app
    // can drop an expired session wherever the call came from.
    this.onUnauthorized = null;
  }

  async request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await fetch(`/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError('unreachable', 'The server cannot be reached. Check your connection.');
    }
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const err = data && data.error ? data.error : {};
      const apiErr = new ApiError(err.code || 'internal', err.message || `HTTP ${res.status}`,
        res.status);
      if (res.status === 401 && this.token && this.onUnauthorized) this.onUnauthorized(apiErr);
      throw apiErr;
    }
    return data;
  }

  register(username, password) {
    return this.request('POST', '/users', { username, password });
  }

  login(username, password) {
    return this.request('POST', '/login', { username, password });
  }

  me() {
    return this.request('GET', '/users/me');
  }

  userByName(username) {
    return this.request('GET', `/users?username=${encodeURIComponent(username)}`);
  }

  // Not in protocol v1: servers without the route answer 404 and the client
  // falls back to a short label (see users.js).
  userById(userId) {
    return this.request('GET', `/users/${encodeURIComponent(userId)}`);
  }

  conversations() {
    return this.request('GET', '/conversations');
  }

  conversation(id) {
    return this.request('GET', `/conversations/${encodeURIComponent(id)}`);
  }

  createSingle(peer) {
    return this.request('POST', '/conversations', { type: 'single', peer });
  }

  createGroup(name, members) {
    return this.request('POST', '/conversations', { type: 'group', name, members });
  }

  addMembers(id, userIds) {
    return this.request('POST', `/conversations/${encodeURIComponent(id)}/members`,
      { user_ids: userIds });
  }

  // Older messages than beforeSeq (or the latest page when it is null).
  history(id, beforeSeq, limit = 50) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (beforeSeq !== null && beforeSeq !== undefined) q.set('before_seq', String(beforeSeq));
    return this.request('GET', `/conversations/${encodeURIComponent(id)}/messages?${q}`);
  }
}
