// The signed-in app: wires the list, the chat pane, the dialogs, the
// connection banner and the toasts to the model. On narrow screens the list
// and the chat are two screens (body.narrow + body.in-chat); on wide ones
// they sit side by side.
import { $, h, avatar } from './dom.js';
import { ListView } from './list-view.js';
import { ChatView, describeSendError } from './chat-view.js';
import { DialogSet } from './dialogs.js';

const NARROW = window.matchMedia('(max-width: 760px)');

export class AppView {
  constructor(chat, conn, users, onLogout) {
    this.chat = chat;
    this.conn = conn;
    this.users = users;
    this.root = $('#app');
    this.list = new ListView(chat, users, (id) => this.open(id, true));
    this.chatView = new ChatView(chat, users, () => this.back());
    this.dialogs = new DialogSet(chat, users, (conv) => this.open(conv.id, true));
    this.bannerTimer = null;
    this.everOpened = false;
    this.cleanups = [];

    this.listen(chat, 'change', (ev) => this.onChange(ev.detail));
    this.listen(conn, 'status', (ev) => this.onStatus(ev.detail));
    this.listen(users, 'change', () => this.renderAll());
    this.listen(document, 'visibilitychange', () => this.updateViewing());
    this.listen(NARROW, 'change', () => this.layout());
    this.listen($('#logout'), 'click', onLogout);
    this.listen($('#new-chat'), 'click', () => this.dialogs.newChat());
    this.listen($('#empty-new-chat'), 'click', () => this.dialogs.newChat());
    this.listen($('#new-group'), 'click', () => this.dialogs.newGroup());
    this.listen($('#add-members'), 'click', () => {
      if (this.chatView.conv) this.dialogs.addMembers(this.chatView.conv);
    });
    this.listen($('#banner-retry'), 'click', () => conn.reconnectNow());
  }

  // addEventListener that destroy() undoes: the same DOM outlives a session.
  listen(target, type, fn) {
    target.addEventListener(type, fn);
    this.cleanups.push(() => target.removeEventListener(type, fn));
  }

  show() {
    const me = this.chat.me;
    $('#me-name').textContent = me.username;
    $('#me-avatar').replaceChildren(avatar(me.user_id, me.username));
    this.root.hidden = false;
    this.layout();
    this.list.render();
    this.chatView.close();
    this.onStatus({ state: this.conn.state, retryAt: this.conn.retryAt });
  }

  destroy() {
    for (const undo of this.cleanups) undo();
    clearInterval(this.bannerTimer);
    this.dialogs.closeAll();
    this.chatView.close();
    this.root.hidden = true;
    document.body.classList.remove('in-chat');
    $('#conv-list').replaceChildren();
    $('#toasts').replaceChildren();
  }

  layout() {
    document.body.classList.toggle('narrow', NARROW.matches);
    this.updateViewing();
  }

  open(id, focus) {
    const conv = this.chat.convs.get(id);
    if (!conv) return;
    document.body.classList.add('in-chat');
    this.list.select(id);
    this.chatView.open(conv);
    this.updateViewing();
    if (focus) this.chatView.focusComposer();
  }

  // Phones: back to the list, focus on the row just left.
  back() {
    const id = this.chatView.conv && this.chatView.conv.id;
    document.body.classList.remove('in-chat');
    this.updateViewing();
    if (id) {
      const row = $(`#conv-list [data-conv-id="${CSS.escape(id)}"]`);
      if (row) row.focus();
    }
  }

  // The model marks messages read only while the chat is actually visible.
  updateViewing() {
    const id = this.chatView.conv ? this.chatView.conv.id : null;
    const chatShown = id !== null && (!NARROW.matches || document.body.classList.contains('in-chat'));
    this.chat.setOpen(id, chatShown && document.visibilityState === 'visible');
  }

  renderAll() {
    this.list.render();
    if (this.chatView.conv) {
      this.chatView.renderHeader();
      this.chatView.renderMessages();
      this.chatView.renderTyping();
    }
  }

  onChange({ what, id, info }) {
    const open = this.chatView.conv;
    switch (what) {
      case 'list':
        this.list.render();
        break;
      case 'messages':
      case 'receipts':
        if (open && open.id === id) this.chatView.renderMessages();
        break;
      case 'typing':
        this.list.render();
        if (open && open.id === id) this.chatView.renderTyping();
        break;
      case 'presence':
        this.list.render();
        if (open) this.chatView.renderSub();
        break;
      case 'conversation':
        this.list.render();
        if (open && open.id === id) this.chatView.renderHeader();
        break;
      case 'send-error':
        if (open && open.id === id) this.chatView.showError(describeSendError(info.code, info.message));
        else this.toast(describeSendError(info.code, info.message));
        break;
      case 'error':
        this.toast(info && info.message ? info.message : 'Something went wrong.');
        break;
      default:
        break;
    }
  }

  // --- Connection state -------------------------------------------------------

  onStatus({ state, retryAt }) {
    const label = $('#conn-state');
    const banner = $('#banner');
    const text = $('#banner-text');
    const retry = $('#banner-retry');
    clearInterval(this.bannerTimer);
    label.dataset.state = state;
    if (state === 'open') {
      this.everOpened = true;
      label.textContent = 'Online';
      banner.hidden = true;
      return;
    }
    if (state === 'connecting') {
      label.textContent = 'Connecting…';
      if (!this.everOpened) {
        banner.hidden = true;
        return;
      }
      banner.hidden = false;
      banner.dataset.state = 'connecting';
      text.textContent = 'Reconnecting…';
      retry.hidden = true;
      return;
    }
    if (state === 'waiting') {
      label.textContent = 'Offline';
      banner.hidden = false;
      banner.dataset.state = 'waiting';
      retry.hidden = false;
      const tickBanner = () => {
        const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
        text.textContent = navigator.onLine
          ? `Can't reach the server. Retrying in ${s} s.`
          : `You are offline. Retrying in ${s} s.`;
      };
      tickBanner();
      this.bannerTimer = setInterval(tickBanner, 1000);
    }
  }

  // Errors not tied to a form or a message. Also logged, so they can be
  // found in the console after the toast is gone.
  toast(message) {
    console.warn(`eim: ${message}`);
    const box = $('#toasts');
    const el = h('div', { class: 'toast' },
      h('span', {}, message),
      h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
    box.append(el);
    while (box.children.length > 3) box.firstElementChild.remove();
    setTimeout(() => el.remove(), 8000);
  }
}
