// Small DOM helpers. Every piece of text from the server goes through
// textContent (never innerHTML), so message content cannot inject markup.

// h('div', {class: 'x', 'aria-label': 'y', onclick: fn}, child, 'text', ...)
// Attributes whose value is null, undefined or false are left out; `true`
// sets a boolean attribute. Children may be nodes, strings or arrays.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function clear(el) {
  el.replaceChildren();
}

// Avatars get one of eight palette classes, chosen by a stable hash of the
// id, so a person keeps their colour everywhere without inline styles (the
// server's CSP forbids them).
export function avatar(id, label, extraClass = '') {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const initials = initialsOf(label);
  return h('span', { class: `avatar tone-${hash % 8} ${extraClass}`.trim(), 'aria-hidden': 'true' },
    initials);
}

function initialsOf(label) {
  const words = String(label).split(/[\s._-]+/).filter(Boolean);
  if (words.length === 0) return '?';
  const first = [...words[0]][0] || '?';
  const second = words.length > 1 ? [...words[1]][0] : [...words[0]][1] || '';
  return (first + second).toUpperCase();
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const longDateFmt = new Intl.DateTimeFormat(undefined,
  { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });

export function formatTime(ms) {
  return timeFmt.format(new Date(ms));
}

// The conversation list shows the time for today, the weekday within a week,
// the date otherwise: what people expect from a chat app.
export function formatShort(ms) {
  const d = new Date(ms);
  const now = new Date();
  if (sameDay(d, now)) return timeFmt.format(d);
  if (now - d < 6 * 86400000) return dayFmt.format(d);
  return dateFmt.format(d);
}

export function formatDay(ms) {
  const d = new Date(ms);
  const now = new Date();
  if (sameDay(d, now)) return 'Today';
  if (sameDay(d, new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1))) return 'Yesterday';
  return longDateFmt.format(d);
}

export function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() &&
    a.getDate() === b.getDate();
}
