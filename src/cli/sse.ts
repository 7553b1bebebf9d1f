// Server-Sent Events as the server writes them (src/server/log-tails.ts): blocks separated by a
// blank line, with `event:`, `id:` and one `data:` line of JSON; comment lines are keepalives.
export interface SseEvent {
  type: string;
  id?: string;
  data: string;
}

/** Feeds text as it arrives; calls onEvent for each whole event (keepalives skipped). */
export class SseParser {
  private buf = '';

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(text: string): void {
    this.buf += text;
    let i;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const type = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!type || data === undefined) continue;
      const id = /^id: (.*)$/m.exec(block)?.[1];
      this.onEvent({ type, data, ...(id !== undefined ? { id } : {}) });
    }
  }
}
