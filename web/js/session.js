// The signed-in session: token, user id, username and expiry, kept in
// sessionStorage so each tab holds its own login and closing the tab ends it.

const KEY = 'eim.session';

export function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (!s || typeof s.token !== 'string' || typeof s.user_id !== 'string') return null;
    if (typeof s.expires_at === 'number' && s.expires_at <= Date.now()) {
      clearSession();
      return null;
    }
    return s;
  } catch {
    clearSession();
    return null;
  }
}

export function saveSession(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}
