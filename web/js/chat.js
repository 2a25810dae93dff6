// The client's model of the chat: conversations, the loaded messages of
// each, the outbox of own messages not yet acked, read receipts, presence and
// typing. It talks to the server through Api and Connection and tells the
// views what changed with a 'change' event (detail: {what, id, info}: id is
// the conversation concerned, info the error for 'error' and 'send-error').
//
// Message ranges: a conversation's `messages` is always a gapless, ascending
// run of seqs [lo..hi] ending at the newest seq the client has seen. Live
// events extend it; a seq beyond hi + 1 means something was missed, and
// conversation.sync fills the hole before the new message is shown.
import { ApiError } from './api.js';

const PAGE = 50;
const SYNC_PAGE = 100;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_MS = 6000;
const RETRY_UNAVAILABLE_MS = 3000;

export function newClientMsgId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `c-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class Chat extends EventTarget {
  constructor(api, conn, users, me) {
    super();
    this.api = api;
    this.conn = conn;
    this.users = users;
    this.me = me;
    this.convs = new Map();
    this.online = new Set();
    this.openId = null;
    this.viewing = false;
    this.outboxKey = `eim.outbox.${me.user_id}`;
    this.receiptKey = `eim.receipts.${me.user_id}`;
    this.outbox = this.loadOutbox();
    this.savedReceipts = this.loadReceipts();
    this.typingSentAt = 0;
    this.typingFor = null;
    this.readTimer = null;

    conn.addEventListener('open', () => this.onOpen());
    conn.addEventListener('event', (ev) => this.onEvent(ev.detail.type, ev.detail.data));
  }

  emit(what, id = null, info = null) {
    this.dispatchEvent(new CustomEvent('change', { detail: { what, id, info } }));
  }

  // --- Conversations --------------------------------------------------------

  // Merges a conversation object from the server into the model.
  upsert(c) {
    let conv = this.convs.get(c.conversation_id);
    if (!conv) {
      conv = {
        id: c.conversation_id,
        messages: [],
        loaded: false,
        hasOlder: true,
        loadingOlder: false,
        syncing: false,
        resync: false,
        receipts: new Map(Object.entries(this.savedReceipts[c.conversation_id] || {})),
        typing: new Map(),
      };
      this.convs.set(conv.id, conv);
    }
    conv.type = c.type;
    conv.name = c.name || '';
    conv.members = Array.isArray(c.members) ? c.members : [];
    conv.created_at = c.created_at;
    conv.max_seq = Math.max(conv.max_seq || 0, c.max_seq || 0);
    conv.read_seq = Math.max(conv.read_seq || 0, c.read_seq || 0);
    conv.unread = Math.max(0, conv.max_seq - conv.read_seq);
    if (c.last_message && (!conv.last_message || c.last_message.seq >= conv.last_message.seq)) {
      conv.last_message = c.last_message;
    }
    return conv;
  }

  peerOf(conv) {
    if (conv.type !== 'single') return null;
    return conv.members.find((m) => m !== this.me.user_id) || null;
  }

  title(conv) {
    if (conv.type === 'single') {
      const peer = this.peerOf(conv);
      return peer ? this.users.name(peer) : 'Just you';
    }
    return conv.name || 'Group';
  }

  lastActivity(conv) {
    return (conv.last_message && conv.last_message.created_at) || conv.created_at || 0;
  }

  // Most recent activity first; a conversation with a message being sent
  // counts as active now.
  sorted() {
    const pendingAt = new Map();
    for (const p of this.outbox) pendingAt.set(p.conversation_id, Math.max(pendingAt.get(p.conversation_id) || 0, p.created_at));
    const key = (c) => Math.max(this.lastActivity(c), pendingAt.get(c.id) || 0);
    return [...this.convs.values()].sort((a, b) => key(b) - key(a));
  }

  totalUnread() {
    let n = 0;
    for (const c of this.convs.values()) n += c.unread;
    return n;
  }

  async refreshList() {
    const res = await this.api.conversations();
    for (const c of res.conversations || []) this.upsert(c);
    this.emit('list');
  }

  async startSingle(username) {
    const user = await this.users.lookup(username);
    if (user.user_id === this.me.user_id) {
      throw new ApiError('bad_request', 'That is you. Pick someone else to chat with.');
    }
    const conv = this.upsert(await this.api.createSingle(user.user_id));
    this.newPeers();
    this.emit('list');
    return conv;
  }

  async createGroup(name, usernames) {
    const ids = await this.lookupAll(usernames);
    const conv = this.upsert(await this.api.createGroup(name, ids));
    this.newPeers();
    this.emit('list');
    return conv;
  }

  async addMembers(convId, usernames) {
    const ids = await this.lookupAll(usernames);
    const conv = this.upsert(await this.api.addMembers(convId, ids));
    this.newPeers();
    this.emit('conversation', conv.id);
    return conv;
  }

  async lookupAll(usernames) {
    const ids = [];
    for (const name of usernames) {
      try {
        const user = await this.users.lookup(name);
        if (user.user_id !== this.me.user_id && !ids.includes(user.user_id)) ids.push(user.user_id);
      } catch (err) {
        if (err.code === 'not_found') throw new ApiError('not_found', `There is no user named "${name}".`);
        throw err;
      }
    }
    return ids;
  }

  // --- Opening and history --------------------------------------------------

  // Marks conversation `id` as the one on screen (null: none). `visible`
  // says whether the user can actually see it (tab visible, chat screen
  // shown); only then are messages marked read.
  setOpen(id, visible) {
    if (this.openId !== id && this.typingFor) this.sendTyping(false);
    if (this.openId !== id && id) this.refreshConversation(id);
    this.openId = id;
    this.viewing = visible;
    const conv = id ? this.convs.get(id) : null;
    if (conv && !conv.loaded && !conv.loadingOlder) this.loadLatest(conv);
    this.scheduleRead();
  }

  // Members added by someone else reach only the new members as an event,
  // so the header's member list is fetched again whenever a chat is opened.
  async refreshConversation(id) {
    try {
      this.upsert(await this.api.conversation(id));
      this.emit('conversation', id);
    } catch (err) {
      if (err.code !== 'unreachable') this.emit('error', null, err);
    }
  }

  async loadLatest(conv) {
    conv.loadingOlder = true;
    try {
      const res = await this.api.history(conv.id, null, PAGE);
      conv.messages = [];
      this.merge(conv, res.messages || [], true);
      conv.hasOlder = Boolean(res.has_more);
      conv.loaded = true;
    } catch (err) {
      this.emit('error', null, err);
      return;
    } finally {
      conv.loadingOlder = false;
    }
    this.emit('messages', conv.id);
    // Anything committed between the page and now arrives live or by sync.
    await this.sync(conv);
    this.scheduleRead();
  }

  // Loads the page before the oldest loaded message. Resolves to the number
  // of messages added.
  async loadOlder(conv) {
    if (!conv.loaded || !conv.hasOlder || conv.loadingOlder || conv.messages.length === 0) return 0;
    conv.loadingOlder = true;
    this.emit('messages', conv.id);
    let added = 0;
    try {
      const res = await this.api.history(conv.id, conv.messages[0].seq, PAGE);
      const older = res.messages || [];
      added = older.length;
      conv.messages = older.concat(conv.messages);
      conv.hasOlder = Boolean(res.has_more);
    } catch (err) {
      this.emit('error', null, err);
    } finally {
      conv.loadingOlder = false;
    }
    this.emit('messages', conv.id);
    return added;
  }

  hiSeq(conv) {
    return conv.messages.length ? conv.messages[conv.messages.length - 1].seq : 0;
  }

  // Appends messages that continue the loaded run; returns false if one
  // would leave a hole (the caller then syncs). `fresh`: the run is empty and
  // may start anywhere (the latest page of history).
  merge(conv, msgs, fresh = false) {
    let contiguous = true;
    for (const m of msgs) {
      const hi = this.hiSeq(conv);
      if (m.seq <= hi) continue;
      if ((conv.messages.length || !fresh) && m.seq !== hi + 1) {
        contiguous = false;
        continue;
      }
      conv.messages.push(m);
      this.noteMessage(conv, m);
    }
    return contiguous;
  }

  noteMessage(conv, m) {
    conv.max_seq = Math.max(conv.max_seq, m.seq);
    if (!conv.last_message || m.seq >= conv.last_message.seq) conv.last_message = m;
    if (m.sender === this.me.user_id) conv.read_seq = Math.max(conv.read_seq, m.seq);
    conv.unread = Math.max(0, conv.max_seq - conv.read_seq);
  }

  // Fetches everything after the newest loaded seq with conversation.sync,
  // page after page. Concurrent calls collapse into one more pass.
  async sync(conv) {
    if (!conv.loaded) return;
    if (conv.syncing) {
      conv.resync = true;
      return;
    }
    conv.syncing = true;
    try {
      do {
        conv.resync = false;
        let more = true;
        while (more) {
          const res = await this.conn.request('conversation.sync',
            { conversation_id: conv.id, after_seq: this.hiSeq(conv), limit: SYNC_PAGE });
          this.merge(conv, res.messages || []);
          more = Boolean(res.has_more) && (res.messages || []).length > 0;
        }
      } while (conv.resync);
    } catch (err) {
      // A dropped connection syncs again on reconnect; nothing to show.
      if (err.code !== 'disconnected') this.emit('error', null, err);
    } finally {
      conv.syncing = false;
    }
    this.emit('messages', conv.id);
    this.emit('list');
    this.scheduleRead();
  }

  // --- Connection lifecycle ---------------------------------------------------

  // After every (re)connect: presence, the list (unread counts moved while we
  // were away), gap filling for loaded conversations, then the outbox.
  async onOpen() {
    try {
      await this.refreshPresence();
      await this.refreshList();
    } catch (err) {
      if (err.code !== 'disconnected') this.emit('error', null, err);
      return;
    }
    for (const conv of this.convs.values()) {
      if (conv.loaded) this.sync(conv);
    }
    const open = this.openId && this.convs.get(this.openId);
    if (open && !open.loaded) this.loadLatest(open);
    for (const p of this.outbox) {
      if (p.status === 'pending') this.transmit(p);
    }
  }

  // Presence events only cover users we already shared a conversation with
  // when they connected; a new conversation brings new peers, so the online
  // set is asked for again then.
  async refreshPresence() {
    const online = await this.conn.request('user.online', {});
    this.online = new Set(online.users || []);
    this.emit('presence');
  }

  newPeers() {
    this.refreshPresence().catch(() => {});
  }

  onEvent(type, data) {
    switch (type) {
      case 'conversation.chat': return this.onChat(data);
      case 'conversation.read': return this.onRead(data);
      case 'conversation.created': {
        this.upsert(data);
        this.newPeers();
        this.emit('list');
        return this.emit('conversation', data.conversation_id);
      }
      case 'presence': {
        if (data.online) this.online.add(data.user_id);
        else this.online.delete(data.user_id);
        return this.emit('presence');
      }
      case 'push': return this.onPush(data);
      default: return undefined;
    }
  }

  async onChat(m) {
    let conv = this.convs.get(m.conversation_id);
    if (!conv) {
      try {
        conv = this.upsert(await this.api.conversation(m.conversation_id));
        this.newPeers();
      } catch (err) {
        this.emit('error', null, err);
        return;
      }
    }
    if (conv.typing.delete(m.sender)) this.emit('typing', conv.id);
    if (!conv.loaded) {
      // Not on screen yet: only the list's counters and preview change.
      this.noteMessage(conv, m);
    } else if (!this.merge(conv, [m])) {
      this.sync(conv);
    }
    this.emit('messages', conv.id);
    this.emit('list');
    this.scheduleRead();
  }

  onRead(r) {
    const conv = this.convs.get(r.conversation_id);
    if (!conv) return;
    if (r.user_id === this.me.user_id) {
      // Read on another device of ours.
      conv.read_seq = Math.max(conv.read_seq, r.read_seq);
      conv.unread = Math.max(0, conv.max_seq - conv.read_seq);
      this.emit('list');
      return;
    }
    const before = conv.receipts.get(r.user_id) || 0;
    if (r.read_seq <= before) return;
    conv.receipts.set(r.user_id, r.read_seq);
    this.saveReceipts();
    this.emit('receipts', conv.id);
  }

  onPush(p) {
    if (!p.conversation_id || p.from === this.me.user_id) return;
    const conv = this.convs.get(p.conversation_id);
    const payload = p.payload;
    if (!conv || payload === null || typeof payload !== 'object' || typeof payload.typing !== 'boolean') return;
    clearTimeout(conv.typing.get(p.from));
    if (payload.typing) {
      conv.typing.set(p.from, setTimeout(() => {
        conv.typing.delete(p.from);
        this.emit('typing', conv.id);
      }, TYPING_SHOW_MS));
    } else {
      conv.typing.delete(p.from);
    }
    this.emit('typing', conv.id);
  }

  // --- Reading ----------------------------------------------------------------

  // Coalesces read updates: many messages arriving at once send one
  // conversation.read.
  scheduleRead() {
    if (this.readTimer) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      this.markRead();
    }, 150);
  }

  async markRead() {
    const conv = this.openId && this.convs.get(this.openId);
    if (!conv || !conv.loaded || !this.viewing || document.visibilityState !== 'visible') return;
    const seq = this.hiSeq(conv);
    if (seq <= conv.read_seq || !this.conn.isOpen) return;
    const before = conv.read_seq;
    conv.read_seq = seq;
    conv.unread = Math.max(0, conv.max_seq - seq);
    this.emit('list');
    try {
      const ack = await this.conn.request('conversation.read', { conversation_id: conv.id, seq });
      conv.read_seq = Math.max(conv.read_seq, ack.read_seq);
      conv.unread = Math.max(0, conv.max_seq - conv.read_seq);
      this.emit('list');
    } catch (err) {
      // Not acknowledged: let the next reconnect or view try again.
      conv.read_seq = before;
      conv.unread = Math.max(0, conv.max_seq - before);
      if (err.code !== 'disconnected') this.emit('error', null, err);
    }
  }

  // Who has read own message `seq`: the user ids whose receipt reached it.
  readers(conv, seq) {
    const out = [];
    for (const [user, readSeq] of conv.receipts) {
      if (readSeq >= seq && user !== this.me.user_id) out.push(user);
    }
    return out;
  }

  // --- Sending ----------------------------------------------------------------

  // Queues a message; it shows at once as pending and is sent now or after
  // the next reconnect, always with the same client_msg_id so a retry can
  // never store it twice.
  send(convId, content) {
    const p = {
      conversation_id: convId,
      client_msg_id: newClientMsgId(),
      content,
      created_at: Date.now(),
      status: 'pending',
      error: null,
    };
    this.outbox.push(p);
    this.saveOutbox();
    this.sendTyping(false);
    this.emit('messages', convId);
    this.emit('list');
    this.transmit(p);
    return p;
  }

  retry(clientMsgId) {
    const p = this.outbox.find((x) => x.client_msg_id === clientMsgId);
    if (!p) return;
    p.status = 'pending';
    p.error = null;
    this.saveOutbox();
    this.emit('messages', p.conversation_id);
    this.transmit(p);
  }

  discard(clientMsgId) {
    const p = this.outbox.find((x) => x.client_msg_id === clientMsgId);
    if (!p) return;
    this.outbox = this.outbox.filter((x) => x !== p);
    this.saveOutbox();
    this.emit('messages', p.conversation_id);
    this.emit('list');
  }

  async transmit(p) {
    if (p.inflight || !this.conn.isOpen) return;
    p.inflight = true;
    let ack;
    try {
      ack = await this.conn.request('conversation.chat',
        { conversation_id: p.conversation_id, client_msg_id: p.client_msg_id, content: p.content });
    } catch (err) {
      p.inflight = false;
      this.sendFailed(p, err);
      return;
    }
    p.inflight = false;
    this.outbox = this.outbox.filter((x) => x !== p);
    this.saveOutbox();
    const conv = this.convs.get(p.conversation_id);
    if (conv) {
      const m = {
        msg_id: ack.msg_id,
        conversation_id: p.conversation_id,
        seq: ack.seq,
        sender: this.me.user_id,
        client_msg_id: p.client_msg_id,
        content_type: 'text',
        content: ack.content,
        created_at: ack.created_at,
      };
      if (!conv.loaded) this.noteMessage(conv, m);
      else if (!this.merge(conv, [m])) this.sync(conv);
    }
    this.emit('messages', p.conversation_id);
    this.emit('list');
  }

  // Errors that a later attempt can cure keep the message pending; the rest
  // mark it failed with the reason, for the user to edit or drop.
  sendFailed(p, err) {
    switch (err.code) {
      case 'disconnected':
      case 'timeout':
        return; // resent on the next 'open'
      case 'unavailable':
        setTimeout(() => this.transmit(p), RETRY_UNAVAILABLE_MS);
        return;
      default:
        p.status = 'failed';
        p.error = { code: err.code, message: err.message };
        this.saveOutbox();
        this.emit('messages', p.conversation_id);
        this.emit('send-error', p.conversation_id, { code: err.code, message: err.message });
    }
  }

  pendingFor(convId) {
    return this.outbox.filter((p) => p.conversation_id === convId);
  }

  // --- Typing -----------------------------------------------------------------

  // Called on every keystroke in the composer; sends at most one push every
  // few seconds while typing, and one `false` when the draft is sent or
  // cleared.
  typing(convId, active) {
    if (!active) {
      if (this.typingFor === convId) this.sendTyping(false);
      return;
    }
    const now = Date.now();
    if (this.typingFor === convId && now - this.typingSentAt < TYPING_SEND_EVERY_MS) return;
    this.typingFor = convId;
    this.typingSentAt = now;
    this.pushTyping(convId, true);
  }

  sendTyping(active) {
    if (!this.typingFor) return;
    const convId = this.typingFor;
    this.typingFor = null;
    this.typingSentAt = 0;
    if (!active) this.pushTyping(convId, false);
  }

  pushTyping(convId, typing) {
    if (!this.conn.isOpen) return;
    this.conn.request('push', { conversation_id: convId, payload: { typing } }).catch(() => {});
  }

  typers(conv) {
    return [...conv.typing.keys()];
  }

  // --- Persistence ------------------------------------------------------------

  loadOutbox() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(this.outboxKey) || '[]');
      return Array.isArray(saved) ? saved.filter((p) => p && p.client_msg_id) : [];
    } catch {
      return [];
    }
  }

  saveOutbox() {
    const plain = this.outbox.map(({ inflight, ...rest }) => rest);
    sessionStorage.setItem(this.outboxKey, JSON.stringify(plain));
  }

  // Protocol v1 reports other members' read positions only as live events,
  // so receipts seen before are kept locally to show "read" after a reload.
  loadReceipts() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.receiptKey) || '{}');
      return saved && typeof saved === 'object' ? saved : {};
    } catch {
      return {};
    }
  }

  saveReceipts() {
    const out = {};
    for (const conv of this.convs.values()) {
      if (conv.receipts.size) out[conv.id] = Object.fromEntries(conv.receipts);
    }
    localStorage.setItem(this.receiptKey, JSON.stringify(out));
  }
}
