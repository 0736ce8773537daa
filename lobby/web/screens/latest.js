// One piece of lobby state (the party, the queue) is fed by REST answers and by /lobby
// socket pushes, which travel on different connections and so can overtake each other:
// an answer to a request sent before the last change may land after the push of that
// change. `Latest` keeps the newest: a push is shown at once, an answer only if nothing
// (no later request, no push) has been shown since its request left.
//   const latest = new Latest();
//   latest.pushed(); render(status);                            // a socket push
//   const t = latest.ticket(); const s = await get(); latest.answered(t) && render(s);
export class Latest {
  #seq = 0;

  /** A request is about to leave: its ticket. */
  ticket() {
    this.#seq += 1;
    return this.#seq;
  }

  /** A push arrived: it supersedes every request still in flight. */
  pushed() {
    this.#seq += 1;
  }

  /** The answer to the request holding `ticket` may be shown (nothing newer was). */
  answered(ticket) {
    return ticket === this.#seq;
  }
}
