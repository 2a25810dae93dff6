// The sign-in / create-account screen. On success it calls onSession with
// {token, user_id, username, expires_at}.
import { $ } from './dom.js';

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/;

const TEXT = {
  signin: {
    title: 'Sign in', sub: 'Welcome back. Sign in to pick up your conversations.',
    submit: 'Sign in', switchText: 'New here?', switchBtn: 'Create an account',
    autocomplete: 'current-password',
  },
  register: {
    title: 'Create your account', sub: 'Pick a username people can find you by.',
    submit: 'Create account', switchText: 'Already have an account?', switchBtn: 'Sign in',
    autocomplete: 'new-password',
  },
};

export class LoginView {
  constructor(api, users, onSession) {
    this.api = api;
    this.users = users;
    this.onSession = onSession;
    this.mode = 'signin';
    this.root = $('#login');
    this.form = $('#login-form');
    this.username = $('#login-username');
    this.password = $('#login-password');
    this.error = $('#login-error');
    this.submit = $('#login-submit');
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.run();
    });
    $('#login-switch').addEventListener('click', () => {
      this.setMode(this.mode === 'signin' ? 'register' : 'signin');
      this.username.focus();
    });
    this.setMode('signin');
  }

  setMode(mode) {
    this.mode = mode;
    const t = TEXT[mode];
    $('#login-title').textContent = t.title;
    $('#login-sub').textContent = t.sub;
    this.submit.textContent = t.submit;
    $('#login-switch-text').textContent = t.switchText;
    $('#login-switch').textContent = t.switchBtn;
    this.password.setAttribute('autocomplete', t.autocomplete);
    $('#login-username-hint').hidden = mode !== 'register';
    $('#login-password-hint').hidden = mode !== 'register';
    this.showError('');
  }

  show(message = '') {
    this.root.hidden = false;
    this.password.value = '';
    this.showError(message);
    document.title = 'ExampleIM';
    this.username.focus();
  }

  hide() {
    this.root.hidden = true;
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
    this.username.removeAttribute('aria-invalid');
    this.password.removeAttribute('aria-invalid');
  }

  // Checks the fields the way the server will, so the common mistakes get
  // an immediate message naming the field.
  validate(username, password) {
    if (!USERNAME_RE.test(username)) {
      this.username.setAttribute('aria-invalid', 'true');
      this.username.focus();
      return 'Usernames are 3 to 32 letters, digits, "_", "." or "-".';
    }
    if (password.length < 8 || password.length > 128) {
      this.password.setAttribute('aria-invalid', 'true');
      this.password.focus();
      return 'Passwords are 8 to 128 characters long.';
    }
    return '';
  }

  async run() {
    const username = this.username.value.trim();
    const password = this.password.value;
    this.showError('');
    const problem = this.validate(username, password);
    if (problem) {
      this.error.textContent = problem;
      this.error.hidden = false;
      return;
    }
    this.submit.disabled = true;
    this.submit.setAttribute('aria-busy', 'true');
    try {
      if (this.mode === 'register') await this.api.register(username, password);
      const res = await this.api.login(username, password);
      this.password.value = '';
      this.onSession({ token: res.token, user_id: res.user_id, username, expires_at: res.expires_at });
    } catch (err) {
      this.showError(this.describe(err));
      this.password.focus();
    } finally {
      this.submit.disabled = false;
      this.submit.removeAttribute('aria-busy');
    }
  }

  describe(err) {
    switch (err.code) {
      case 'unauthorized': return 'Wrong username or password.';
      case 'conflict': return 'That username is taken. Try another one.';
      case 'rate_limited': return 'Too many attempts. Wait a moment and try again.';
      case 'unreachable': return 'Cannot reach the server. Check your connection and try again.';
      case 'unavailable': return 'The server is busy. Try again in a moment.';
      default: return err.message || 'Something went wrong. Try again.';
    }
  }
}
