// The open conversation: header (title, presence or typing), the message
// log with day separators and delivery states, older history on scrolling
// up, and the composer (Enter sends, Shift+Enter adds a line).
import { $, h, avatar, formatTime, formatDay, sameDay } from './dom.js';

const NEAR_BOTTOM_PX = 48;
const LOAD_OLDER_PX = 240;

const ERROR_TEXT = {
  rejected: (m) => `Not sent: ${m || 'blocked by a content filter.'}`,
  rate_limited: () => 'Not sent: you are sending too fast. Wait a moment, then retry.',
  payload_too_large: () => 'Not sent: the message is too long.',
  forbidden: () => 'Not sent: you are not a member of this conversation.',
  bad_request: (m) => `Not sent: ${m || 'the server refused the message.'}`,
};

export function describeSendError(code, message) {
  const f = ERROR_TEXT[code];
  return f ? f(message) : `Not sent: ${message || 'something went wrong.'}`;
}

export class ChatView {
  constructor(chat, users, onBack) {
    this.chat = chat;
    this.users = users;
    this.conv = null;
    this.nodes = new Map();
    this.root = $('#chat-view');
    this.none = $('#chat-none');
    this.scroller = $('#messages');
    this.list = $('#message-list');
    this.older = $('#older');
    this.jump = $('#jump');
    this.typingEl = $('#typing');
    this.errorEl = $('#chat-error');
    this.input = $('#composer-input');
    this.sendBtn = $('#send');
    this.drafts = new Map();

    // Property handlers, not addEventListener: a new session's view replaces
    // the previous one's on the same elements instead of adding to them.
    $('#back').onclick = onBack;
    this.root.onkeydown = (ev) => {
      if (ev.key === 'Escape' && !ev.defaultPrevented && document.body.classList.contains('narrow')) onBack();
    };
    $('#composer').onsubmit = (ev) => {
      ev.preventDefault();
      this.submit();
    };
    this.input.onkeydown = (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submit();
      }
    };
    this.input.oninput = () => {
      const text = this.input.value;
      this.sendBtn.disabled = text.trim() === '';
      if (this.conv) {
        this.drafts.set(this.conv.id, text);
        this.chat.typing(this.conv.id, text.trim() !== '');
      }
    };
    this.scroller.onscroll = () => this.onScroll();
    this.jump.onclick = () => this.scrollToBottom();
  }

  open(conv) {
    if (this.conv && this.conv.id !== conv.id) this.drafts.set(this.conv.id, this.input.value);
    const switching = !this.conv || this.conv.id !== conv.id;
    this.conv = conv;
    this.none.hidden = true;
    this.root.hidden = false;
    if (switching) {
      this.nodes = new Map();
      this.list.replaceChildren();
      this.input.value = this.drafts.get(conv.id) || '';
      this.sendBtn.disabled = this.input.value.trim() === '';
      this.showError('');
      this.jump.hidden = true;
    }
    this.renderHeader();
    this.renderMessages('bottom');
    this.renderTyping();
  }

  close() {
    if (this.conv) this.drafts.set(this.conv.id, this.input.value);
    this.conv = null;
    this.root.hidden = true;
    this.none.hidden = false;
  }

  focusComposer() {
    this.input.focus();
  }

  showError(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = !text;
  }

  submit() {
    if (!this.conv) return;
    const text = this.input.value;
    if (text.trim() === '') return;
    this.showError('');
    this.input.value = '';
    this.drafts.delete(this.conv.id);
    this.sendBtn.disabled = true;
    this.chat.send(this.conv.id, text);
    this.scrollToBottom();
  }

  // --- Header -----------------------------------------------------------------

  renderHeader() {
    const conv = this.conv;
    if (!conv) return;
    const title = this.chat.title(conv);
    const peer = this.chat.peerOf(conv);
    $('#chat-title').textContent = title;
    $('#chat-avatar').replaceChildren(avatar(peer || conv.id, title, conv.type === 'group' ? 'group' : ''));
    $('#add-members').hidden = conv.type !== 'group';
    this.renderSub();
  }

  renderSub() {
    const conv = this.conv;
    const sub = $('#chat-sub');
    const peer = this.chat.peerOf(conv);
    sub.classList.remove('online');
    if (peer) {
      const online = this.chat.online.has(peer);
      sub.textContent = online ? 'online' : 'offline';
      sub.dataset.presence = online ? 'online' : 'offline';
      sub.classList.toggle('online', online);
    } else if (conv.type === 'group') {
      const others = conv.members.filter((m) => m !== this.chat.me.user_id);
      const online = others.filter((m) => this.chat.online.has(m)).length;
      sub.textContent = `${conv.members.length} members${online ? `, ${online} online` : ''}`;
      delete sub.dataset.presence;
    } else {
      sub.textContent = '';
    }
  }

  renderTyping() {
    const conv = this.conv;
    if (!conv) return;
    const typers = this.chat.typers(conv);
    let text = '';
    if (typers.length === 1) {
      text = `${this.users.name(typers[0])} is typing…`;
    } else if (typers.length === 2) {
      text = `${this.users.name(typers[0])} and ${this.users.name(typers[1])} are typing…`;
    } else if (typers.length > 2) {
      text = 'Several people are typing…';
    }
    this.typingEl.textContent = text;
    this.typingEl.classList.toggle('active', text !== '');
  }

  // --- Messages ---------------------------------------------------------------

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.jump.hidden = true;
  }

  async onScroll() {
    if (this.atBottom()) this.jump.hidden = true;
    const conv = this.conv;
    if (!conv || this.scroller.scrollTop > LOAD_OLDER_PX || !conv.hasOlder || conv.loadingOlder || !conv.loaded) return;
    const added = await this.chat.loadOlder(conv);
    if (added && this.conv === conv && this.scroller.scrollTop <= LOAD_OLDER_PX) this.onScroll();
  }

  // Rebuilds the log from the model, reusing the element of every message
  // whose rendering did not change. `mode`: 'bottom' scrolls to the end,
  // 'keep' keeps the reader's place (prepended history does not move it) and
  // follows new messages only when the reader was already at the end.
  renderMessages(mode = 'keep') {
    const conv = this.conv;
    if (!conv) return;
    const wasAtBottom = this.atBottom();
    const firstKey = this.list.firstElementChild ? this.list.firstElementChild.dataset.key : null;
    const anchor = firstKey ? this.nodes.get(firstKey) : null;
    const anchorTop = anchor ? anchor.el.offsetTop - this.scroller.scrollTop : 0;
    const lastBefore = this.list.lastElementChild ? this.list.lastElementChild.dataset.key : null;

    // The banner repeats the newest failure; it goes once none is left.
    if (!this.chat.pendingFor(conv.id).some((p) => p.status === 'failed')) this.showError('');
    const items = this.items(conv);
    const next = new Map();
    const els = [];
    for (const item of items) {
      const old = this.nodes.get(item.key);
      const entry = old && old.sig === item.sig ? old : { sig: item.sig, el: item.build() };
      entry.el.dataset.key = item.key;
      next.set(item.key, entry);
      els.push(entry.el);
    }
    this.nodes = next;
    this.patchList(els);

    if (!conv.loaded) this.older.textContent = 'Loading messages…';
    else if (conv.loadingOlder) this.older.textContent = 'Loading earlier messages…';
    else if (!conv.hasOlder) this.older.textContent = conv.messages.length ? 'This is the beginning of the conversation.' : '';
    else this.older.textContent = '';

    const lastAfter = els.length ? els[els.length - 1].dataset.key : null;
    if (mode === 'bottom' || wasAtBottom) {
      this.scrollToBottom();
    } else if (anchor && next.has(firstKey)) {
      this.scroller.scrollTop = anchor.el.offsetTop - anchorTop;
      if (lastAfter !== lastBefore) this.jump.hidden = false;
    }
  }

  // Makes the log's children exactly `els`, touching only what changed:
  // the log is an aria-live region, and re-inserting every row would make
  // screen readers announce the whole conversation again.
  patchList(els) {
    const keep = new Set(els);
    for (const child of [...this.list.children]) {
      if (!keep.has(child)) child.remove();
    }
    let cursor = this.list.firstElementChild;
    for (const el of els) {
      if (el === cursor) cursor = cursor.nextElementSibling;
      else this.list.insertBefore(el, cursor);
    }
  }

  // The log's rows in order: day separators, messages, then own messages
  // still in the outbox. Each row has a stable key and a signature of what
  // it shows.
  items(conv) {
    const out = [];
    const me = this.chat.me.user_id;
    let prevDay = null;
    let prevSender = null;
    const lastOwn = this.lastOwnSeq(conv);
    const addDay = (ms) => {
      const d = new Date(ms);
      if (prevDay && sameDay(prevDay, d)) return;
      prevDay = d;
      prevSender = null;
      const label = formatDay(ms);
      out.push({ key: `d${d.toDateString()}`, sig: label, build: () => h('li', { class: 'day' }, h('span', {}, label)) });
    };
    for (const m of conv.messages) {
      addDay(m.created_at);
      const own = m.sender === me;
      const showName = conv.type === 'group' && !own && prevSender !== m.sender;
      prevSender = m.sender;
      const status = own ? this.statusOf(conv, m) : null;
      const showStatusText = own && m.seq === lastOwn;
      const name = showName ? this.users.name(m.sender) : '';
      const sig = [m.content, name, status && status.state, status && status.text, showStatusText].join('\u0001');
      out.push({ key: `s${m.seq}`, sig, build: () => this.messageEl(m, own, name, status, showStatusText) });
    }
    for (const p of this.chat.pendingFor(conv.id)) {
      addDay(p.created_at);
      prevSender = me;
      const status = p.status === 'failed'
        ? { state: 'failed', text: describeSendError(p.error && p.error.code, p.error && p.error.message) }
        : { state: 'pending', text: 'Sending…' };
      const sig = [p.content, status.state, status.text].join('\u0001');
      out.push({ key: `c${p.client_msg_id}`, sig, build: () => this.pendingEl(p, status) });
    }
    return out;
  }

  lastOwnSeq(conv) {
    for (let i = conv.messages.length - 1; i >= 0; i--) {
      if (conv.messages[i].sender === this.chat.me.user_id) return conv.messages[i].seq;
    }
    return 0;
  }

  // Delivery state of an acked own message: read once a receipt covers it
  // (in groups, by whom), sent otherwise.
  statusOf(conv, m) {
    const readers = this.chat.readers(conv, m.seq);
    if (readers.length === 0) return { state: 'sent', text: 'Sent' };
    if (conv.type !== 'group') return { state: 'read', text: 'Read' };
    const names = readers.map((u) => this.users.name(u));
    const others = conv.members.length - 1;
    if (others > 1 && readers.length >= others) return { state: 'read', text: 'Seen by everyone' };
    return { state: 'read', text: names.length <= 3 ? `Seen by ${names.join(', ')}` : `Seen by ${names.length}` };
  }

  messageEl(m, own, name, status, showStatusText) {
    const text = m.content_type === 'text' ? m.content : `[${m.content_type} message]`;
    const who = own ? 'You' : this.users.name(m.sender);
    return h('li', {
      class: `msg ${own ? 'own' : 'other'}`,
      'data-seq': m.seq,
      'data-status': status ? status.state : null,
      'data-client-msg-id': m.client_msg_id || null,
    },
    h('div', { class: 'bubble' },
      name ? h('span', { class: 'sender' }, name) : h('span', { class: 'visually-hidden' }, `${who}: `),
      h('span', { class: 'text' }, text),
      h('span', { class: 'meta' },
        h('time', { datetime: new Date(m.created_at).toISOString() }, formatTime(m.created_at)),
        status ? tick(status.state) : null,
        status && !showStatusText ? h('span', { class: 'visually-hidden' }, status.text) : null)),
    status && showStatusText ? h('span', { class: `status-text ${status.state}` }, status.text) : null);
  }

  pendingEl(p, status) {
    const canRetry = p.status === 'failed' && !['rejected', 'payload_too_large', 'forbidden'].includes(p.error && p.error.code);
    return h('li', {
      class: `msg own ${status.state}`,
      'data-status': status.state,
      'data-client-msg-id': p.client_msg_id,
    },
    h('div', { class: 'bubble' },
      h('span', { class: 'visually-hidden' }, 'You: '),
      h('span', { class: 'text' }, p.content),
      h('span', { class: 'meta' },
        status.state === 'pending' ? h('span', {}, formatTime(p.created_at)) : null,
        tick(status.state),
        status.state === 'pending' ? h('span', { class: 'visually-hidden' }, status.text) : null)),
    status.state === 'failed'
      ? h('span', { class: 'status-text failed' }, status.text, ' ',
        canRetry ? h('button', { type: 'button', class: 'link', onclick: () => this.chat.retry(p.client_msg_id) }, 'Retry') : null,
        ' ',
        h('button', { type: 'button', class: 'link', onclick: () => this.chat.discard(p.client_msg_id) }, 'Remove'))
      : null);
  }
}

// Delivery marks: a clock while sending, one tick sent, two ticks read, an
// exclamation mark on failure. The text beside them says the same for
// screen readers.
function tick(state) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 16');
  svg.setAttribute('class', `tick ${state}`);
  svg.setAttribute('aria-hidden', 'true');
  const paths = {
    pending: ['M12 3.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zM12 5.5V8l1.8 1.2'],
    sent: ['M5 8.5l3.5 3.5L16 4.5'],
    read: ['M2 8.5l3.5 3.5L13 4.5', 'M9.5 11.5l.5.5L17.5 4.5'],
    failed: ['M12 3v6.5M12 12v.5'],
  }[state];
  for (const d of paths) {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}
