// User names by id. Protocol v1 names users only in look-ups by username, so
// the directory learns names from those look-ups and from the session, keeps
// them in localStorage across visits, and asks GET /users/{id} for the rest
// where the server offers it. Until a name is known a user shows as
// "User <id>".

const STORE_KEY = 'eim.users';
const MAX_REMEMBERED = 2000;

export class Users extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.names = new Map();
    this.inflight = new Set();
    this.unsupported = false;
    try {
      const saved = JSON.parse(localStorage.getItem(STORE_KEY) || '{}');
      for (const [id, name] of Object.entries(saved)) {
        if (typeof name === 'string') this.names.set(id, name);
      }
    } catch {
      localStorage.removeItem(STORE_KEY);
    }
  }

  learn(userId, username) {
    if (!userId || !username || this.names.get(userId) === username) return;
    this.names.set(userId, username);
    const entries = [...this.names].slice(-MAX_REMEMBERED);
    localStorage.setItem(STORE_KEY, JSON.stringify(Object.fromEntries(entries)));
    this.dispatchEvent(new CustomEvent('change'));
  }

  known(userId) {
    return this.names.has(userId);
  }

  name(userId) {
    const known = this.names.get(userId);
    if (known) return known;
    this.resolve(userId);
    return `User ${userId}`;
  }

  // Fetches a name in the background; 'change' fires when it arrives. A 404
  // for the route itself means the server lacks it: stop asking.
  async resolve(userId) {
    if (this.unsupported || this.inflight.has(userId) || !this.api.token) return;
    this.inflight.add(userId);
    try {
      const user = await this.api.userById(userId);
      if (user && user.user_id === userId) this.learn(userId, user.username);
    } catch (err) {
      if (err.code === 'not_found') this.unsupported = true;
    } finally {
      this.inflight.delete(userId);
    }
  }

  // Looks a username up (for starting chats and adding members) and
  // remembers it. Rejects with the ApiError, `not_found` for no such user.
  async lookup(username) {
    const user = await this.api.userByName(username);
    this.learn(user.user_id, user.username);
    return user;
  }
}
