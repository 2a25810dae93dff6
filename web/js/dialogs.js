// The modal dialogs: new chat by username, new group, add people to a
// group. <dialog>.showModal() traps focus and closes on Escape; each form
// shows the server's answer (no such user, ...) inside the dialog.
import { $ } from './dom.js';

// "alice, bob  carol" -> ['alice', 'bob', 'carol'], without repeats.
export function parseUsernames(text) {
  return [...new Set(text.split(/[\s,;]+/).map((s) => s.replace(/^@/, '')).filter(Boolean))];
}

export class DialogSet {
  constructor(chat, users, onOpened) {
    this.chat = chat;
    this.users = users;
    this.onOpened = onOpened;
    this.target = null;
    for (const dlg of document.querySelectorAll('dialog')) {
      for (const btn of dlg.querySelectorAll('[data-close]')) btn.onclick = () => dlg.close();
    }
    this.bind('#form-chat', '#chat-form-error', async () => {
      const name = $('#chat-username').value.trim();
      if (!name) throw new Error('Enter a username.');
      return this.chat.startSingle(name).catch((err) => {
        if (err.code === 'not_found') throw new Error(`There is no user named "${name}".`);
        throw err;
      });
    });
    this.bind('#form-group', '#group-form-error', async () => {
      const name = $('#group-name').value.trim();
      if (!name) throw new Error('Give the group a name.');
      return this.chat.createGroup(name, parseUsernames($('#group-members').value));
    });
    this.bind('#form-add', '#add-form-error', async () => {
      const names = parseUsernames($('#add-usernames').value);
      if (names.length === 0) throw new Error('Enter at least one username.');
      return this.chat.addMembers(this.target.id, names);
    });
  }

  // Submitting runs `action`; success closes the dialog and opens the
  // conversation it returns, failure shows the message in `errorSel`.
  bind(formSel, errorSel, action) {
    const form = $(formSel);
    const error = $(errorSel);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const submit = form.querySelector('button[type="submit"]');
      error.hidden = true;
      submit.disabled = true;
      try {
        const conv = await action();
        form.closest('dialog').close();
        this.onOpened(conv);
      } catch (err) {
        error.textContent = err.message || 'Something went wrong.';
        error.hidden = false;
      } finally {
        submit.disabled = false;
      }
    };
  }

  reset(formSel, errorSel) {
    $(formSel).reset();
    $(errorSel).hidden = true;
  }

  newChat() {
    this.reset('#form-chat', '#chat-form-error');
    $('#dlg-chat').showModal();
  }

  newGroup() {
    this.reset('#form-group', '#group-form-error');
    $('#dlg-group').showModal();
  }

  addMembers(conv) {
    this.target = conv;
    this.reset('#form-add', '#add-form-error');
    const names = conv.members.map((m) => (m === this.chat.me.user_id ? 'you' : this.users.name(m)));
    $('#add-members-list').textContent = `In "${conv.name}": ${names.join(', ')}`;
    $('#dlg-add').showModal();
  }

  closeAll() {
    for (const dlg of document.querySelectorAll('dialog[open]')) dlg.close();
  }
}
