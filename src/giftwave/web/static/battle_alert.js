// A battle invitation the creator cannot miss (docs/web.md): a toast at the top of the window
// with Accept and Decline, the tab's title alternating while it waits, and, when the creator
// turned it on, a short tone generated with Web Audio. The sound is off by default; the choice
// is remembered in this browser (localStorage).

import { t } from "./site.js";

const SOUND_KEY = "gw_battle_sound";
const BLINK_MS = 1000;
const TONE = [[880, 0], [660, 0.18], [880, 0.36]]; // [hertz, start in seconds]
const NOTE_S = 0.15;

function stored() {
  try { return localStorage.getItem(SOUND_KEY) === "on"; } catch (_) { return false; }
}

export class BattleAlert {
  constructor({ accept, decline }) {
    this.toast = document.getElementById("battle-toast");
    this.sound = document.getElementById("battle-sound");
    this.title = document.title;
    this.shown = null; // the battle id on screen
    this.blink = null;
    this.audio = null;
    if (!this.toast) return;
    document.getElementById("battle-toast-accept").addEventListener("click", accept);
    document.getElementById("battle-toast-decline").addEventListener("click", decline);
    this.sound.checked = stored();
    this.sound.addEventListener("change", () => {
      try { localStorage.setItem(SOUND_KEY, this.sound.checked ? "on" : "off"); } catch (_) { /* this page only */ }
      if (this.sound.checked) this.context()?.resume().catch(() => {}); // a click may start audio
    });
  }

  context() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    this.audio ??= new Context();
    return this.audio;
  }

  /** The invitation `battleId`, its words and the time left; the first time, it rings. */
  show(battleId, text, time) {
    if (!this.toast) return;
    this.toast.querySelector(".battle-toast-text").textContent = text;
    this.toast.querySelector(".battle-toast-time").textContent = time;
    if (this.shown === battleId) return;
    this.shown = battleId;
    this.toast.hidden = false;
    document.getElementById("battle-toast-accept").focus({ preventScroll: true });
    const calling = `⚔ ${t("Battle invitation")}`;
    clearInterval(this.blink);
    document.title = calling;
    this.blink = setInterval(() => {
      document.title = document.title === calling ? this.title : calling;
    }, BLINK_MS);
    if (this.sound.checked) this.ring();
  }

  hide() {
    if (!this.toast || this.shown === null) return;
    this.shown = null;
    this.toast.hidden = true;
    clearInterval(this.blink);
    this.blink = null;
    document.title = this.title;
  }

  ring() {
    const ctx = this.context();
    if (!ctx) return;
    ctx.resume().catch(() => {});
    const gain = ctx.createGain();
    gain.gain.value = 0.12;
    gain.connect(ctx.destination);
    for (const [hertz, at] of TONE) {
      const osc = ctx.createOscillator();
      osc.frequency.value = hertz;
      osc.connect(gain);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + NOTE_S);
    }
  }
}
