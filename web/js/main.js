// Entry point: shows the sign-in screen or the app, and owns the objects of
// one signed-in session (connection, model, views) so logging out drops
// them all.
import { Api } from './api.js';
import { Connection } from './conn.js';
import { Users } from './users.js';
import { Chat } from './chat.js';
import { loadSession, saveSession, clearSession } from './session.js';
import { LoginView } from './login-view.js';
import { AppView } from './app-view.js';

const api = new Api();
const users = new Users(api);
let live = null;

const login = new LoginView(api, users, (session) => {
  saveSession(session);
  startApp(session);
});

api.onUnauthorized = () => logout('Your session has ended. Please sign in again.');

function startApp(session) {
  api.token = session.token;
  users.learn(session.user_id, session.username);
  const conn = new Connection(session.token);
  const chat = new Chat(api, conn, users, { user_id: session.user_id, username: session.username });
  const view = new AppView(chat, conn, users, () => logout());
  conn.addEventListener('closed', (ev) => onClosed(ev.detail));
  live = { conn, chat, view };
  login.hide();
  view.show();
  conn.start();
}

// A socket that never opened may have been refused for its token (the
// browser hides the 401); asking /users/me tells an expired session from a
// server that is down. 1008 with "token expired" says so outright.
async function onClosed({ code, reason, opened }) {
  if (code === 1008 && /token/i.test(reason)) {
    logout('Your session has expired. Please sign in again.');
    return;
  }
  if (opened || !live) return;
  try {
    await api.me();
  } catch {
    // 401 logs out through api.onUnauthorized; anything else: keep retrying.
  }
}

function logout(message) {
  if (live) {
    live.conn.stop();
    live.view.destroy();
    live = null;
  }
  api.token = null;
  clearSession();
  login.show(message);
}

const session = loadSession();
if (session) startApp(session);
else login.show();
