// The conversation list: one row a conversation, most recent first, with
// its avatar and presence dot, last-message preview, time and unread badge.
import { $, h, avatar, formatShort } from './dom.js';

export class ListView {
  constructor(chat, users, onOpen) {
    this.chat = chat;
    this.users = users;
    this.onOpen = onOpen;
    this.list = $('#conv-list');
    this.empty = $('#conv-empty');
    this.selected = null;
  }

  select(id) {
    this.selected = id;
    this.render();
  }

  render() {
    const convs = this.chat.sorted();
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.convId : undefined;
    this.list.replaceChildren(...convs.map((c) => this.row(c)));
    this.empty.hidden = convs.length > 0;
    this.list.hidden = convs.length === 0;
    // Re-rendering replaces the rows; keep keyboard focus where it was.
    if (focusedId) {
      const again = this.list.querySelector(`[data-conv-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
    const unread = this.chat.totalUnread();
    document.title = unread > 0 ? `(${unread}) ExampleIM` : 'ExampleIM';
  }

  row(conv) {
    const me = this.chat.me.user_id;
    const title = this.chat.title(conv);
    const peer = this.chat.peerOf(conv);
    const online = peer ? this.chat.online.has(peer) : false;
    const pending = this.chat.pendingFor(conv.id);
    const typers = this.chat.typers(conv);

    let preview;
    let previewClass = 'preview';
    if (typers.length) {
      preview = conv.type === 'single' ? 'typing…' : `${this.users.name(typers[0])} is typing…`;
      previewClass += ' is-typing';
    } else if (pending.length) {
      const last = pending[pending.length - 1];
      preview = `${last.status === 'failed' ? 'Not sent' : 'Sending'}: ${last.content}`;
    } else if (conv.last_message) {
      const m = conv.last_message;
      const who = m.sender === me ? 'You: ' : conv.type === 'group' ? `${this.users.name(m.sender)}: ` : '';
      preview = who + (m.content_type === 'text' ? m.content : `[${m.content_type}]`);
    } else {
      preview = conv.type === 'group' ? `${conv.members.length} members` : 'No messages yet';
      previewClass += ' muted';
    }

    const when = conv.last_message ? conv.last_message.created_at : conv.created_at;
    const unread = conv.unread > 0 ? conv.unread : 0;
    const label = [title, conv.type === 'group' ? 'group' : null, peer ? (online ? 'online' : 'offline') : null,
      unread ? `${unread} unread` : null, preview].filter(Boolean).join(', ');

    return h('li', { class: 'conv-item' },
      h('button', {
        type: 'button',
        class: `conv${conv.id === this.selected ? ' selected' : ''}${unread ? ' has-unread' : ''}`,
        'data-conv-id': conv.id,
        'aria-label': label,
        'aria-current': conv.id === this.selected ? 'true' : null,
        onclick: () => this.onOpen(conv.id),
      },
      h('span', { class: 'avatar-wrap' },
        avatar(peer || conv.id, title, conv.type === 'group' ? 'group' : ''),
        peer ? h('span', { class: `dot ${online ? 'online' : 'offline'}`, 'data-presence': online ? 'online' : 'offline' }) : null),
      h('span', { class: 'conv-main' },
        h('span', { class: 'conv-top' },
          h('span', { class: 'conv-title' }, title),
          when ? h('time', { class: 'conv-time', datetime: new Date(when).toISOString() }, formatShort(when)) : null),
        h('span', { class: 'conv-bottom' },
          h('span', { class: previewClass }, preview),
          unread ? h('span', { class: 'badge', 'data-unread': unread }, unread > 99 ? '99+' : String(unread)) : null))));
  }
}
