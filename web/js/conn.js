// The WebSocket half of the protocol: one connection, requests matched to
// their replies by `id`, server events re-emitted as DOM events, and
// reconnection with capped exponential backoff and jitter after any drop.
//
// Events dispatched (CustomEvent, detail in brackets):
//   'open'              a connection is ready (after every reconnect too)
//   'status' [{state, retryAt}]  state: connecting | open | waiting | stopped
//   'event'  [{type, data}]      a server event (conversation.chat, presence, ...)
//   'closed' [{code, reason, opened}]  the socket closed, before any reconnect
import { ApiError } from './api.js';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
const REQUEST_TIMEOUT_MS = 15000;
// The server closes a socket that sent nothing for 90 s and pings every
// 30 s; a client ping every 25 s also notices a half-open TCP connection
// (laptop lid, lost Wi-Fi) sooner than the OS would.
const KEEPALIVE_MS = 25000;

export class Connection extends EventTarget {
  constructor(token) {
    super();
    this.token = token;
    this.ws = null;
    this.state = 'stopped';
    this.attempt = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.retryTimer = null;
    this.keepaliveTimer = null;
    this.retryAt = 0;
    this.onBrowserOnline = () => this.reconnectNow();
  }

  start() {
    window.addEventListener('online', this.onBrowserOnline);
    this.open();
  }

  stop() {
    window.removeEventListener('online', this.onBrowserOnline);
    clearTimeout(this.retryTimer);
    clearInterval(this.keepaliveTimer);
    this.setState('stopped');
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'logout');
    }
    this.failPending('disconnected', 'Logged out.');
  }

  // Skips the rest of the backoff wait ("Retry now", or the browser says the
  // network is back).
  reconnectNow() {
    if (this.state !== 'waiting') return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  get isOpen() {
    return this.state === 'open';
  }

  open() {
    this.setState('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      opened = true;
      this.attempt = 0;
      this.setState('open');
      this.keepaliveTimer = setInterval(() => this.keepalive(), KEEPALIVE_MS);
      this.dispatchEvent(new CustomEvent('open'));
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws === ws) this.receive(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.keepaliveTimer);
      this.failPending('disconnected', 'The connection was lost.');
      this.dispatchEvent(new CustomEvent('closed',
        { detail: { code: ev.code, reason: ev.reason, opened } }));
      if (this.state !== 'stopped') this.scheduleRetry();
    });
  }

  scheduleRetry() {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    // Full jitter on half the delay keeps many clients from reconnecting in
    // lockstep after a server restart.
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState('waiting');
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('status', { detail: { state, retryAt: this.retryAt } }));
  }

  async keepalive() {
    try {
      await this.request('ping', {});
    } catch (err) {
      // No pong in time: the socket is dead even if the browser has not
      // noticed yet. Closing it starts the reconnect.
      if (err.code === 'timeout' && this.ws) this.ws.close(4000, 'ping timeout');
    }
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    const waiter = frame.id !== undefined ? this.pending.get(String(frame.id)) : undefined;
    if (waiter) {
      this.pending.delete(String(frame.id));
      clearTimeout(waiter.timer);
      if (frame.type === 'error') {
        const e = (frame.data && frame.data.error) || {};
        waiter.reject(new ApiError(e.code || 'internal', e.message || 'Request failed.'));
      } else {
        waiter.resolve(frame.data || {});
      }
      return;
    }
    this.dispatchEvent(new CustomEvent('event', { detail: { type: frame.type, data: frame.data || {} } }));
  }

  // Sends one request and resolves with the ack's data, or rejects with an
  // ApiError: the server's code, `disconnected` (not sent, or the socket
  // dropped before the reply) or `timeout`.
  request(type, data) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.state !== 'open') {
        reject(new ApiError('disconnected', 'Not connected.'));
        return;
      }
      const id = `r${this.nextId++}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError('timeout', 'The server did not answer in time.'));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type, id, data }));
    });
  }

  failPending(code, message) {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new ApiError(code, message));
    }
    this.pending.clear();
  }
}
