// Type declarations of the Gangway browser SDK (/sdk/gangway.js). See docs/sdk.md.

export declare const VERSION: string;

/** What a step shows: `kind` picks the renderer; the other fields are the kind's own. */
export interface Presentation {
  kind: "iframe" | "qr" | "popup" | "redirect" | "chat" | "progress" | string;
  /** iframe, popup, redirect: the provider's URL (http or https). */
  url?: string;
  /** iframe: the `allow` attribute (default `camera; microphone; geolocation`). */
  allow?: string;
  /** qr: the QR code as SVG, rendered by Gangway. */
  svg?: string;
  /** qr: a deep link for phones. */
  link?: string;
  /** popup: `window.open` features. */
  features?: string;
  /** popup: the value the popup's `postMessage` must carry. */
  state?: string;
  /** popup: the provider's name in the texts ("The 360dialog window was closed."). */
  provider?: string;
  /** popup, redirect: the button's label (default "Continue"); `title`: the heading. */
  label?: string;
  title?: string;
  /** redirect: the line under the heading. */
  text?: string;
  /** popup: the window was closed without an answer; offer "Try again" and "Cancel" (signal `cancel`). */
  closed?: boolean;
  /** chat: the greeting shown first, and the input's placeholder. */
  greeting?: string;
  placeholder?: string;
  /** chat: the commands (`/name`), each running a workflow; the conversation comes over the chat socket. */
  commands?: { name: string; run: string; usage?: string; help?: string; args?: "none" | "text" | "flow" }[];
  /** progress: the line to show. */
  message?: string | null;
  [field: string]: unknown;
}

export type Outcome = "approved" | "declined" | "review" | "failed" | "canceled" | "expired";

/** The client view (`GET /v1/client/sessions/{id}`, and every stream event). */
export interface ClientView {
  id: string;
  status: "running" | "waiting" | "ended";
  step: { name: string; present: Presentation | null } | null;
  outcome: Outcome | null;
  reason: string | null;
  deadline: string | null;
}

export type ConnectionState = "connecting" | "live" | "reconnecting" | "closed" | "failed";

/**
 * Why the stream was refused: this page's origin is not in the server's
 * `client.allowed_origins`; the client secret expired; it was refused (wrong,
 * or replaced by a newer one); or another HTTP status (`http_404`, ...).
 */
export type ErrorCode = "origin_not_allowed" | "secret_expired" | "secret_refused" | `http_${number}`;

export interface FlowEvents {
  /** The session moved to another step or presentation (also for replayed events on mount). */
  step: { step: ClientView["step"]; view: ClientView; eventId: string };
  /** The session ended; the stream is closed. */
  ended: { outcome: Outcome; reason: string | null; view: ClientView; eventId: string };
  /**
   * `fatal`: the stream was refused for good (no retry), and `code` says why;
   * else a step could not be shown.
   */
  error: { message: string; status?: number; code?: ErrorCode; fatal: boolean };
  /** The stream's connection state. */
  connection: { state: ConnectionState };
}

export interface MountOptions {
  sessionId: string;
  /** The session's client secret, from your backend. Sent only as `Authorization: Bearer`. */
  clientSecret: string;
  /** Gangway's URL; default: the server this module was loaded from (`/sdk/gangway.js`). Required with the npm package. */
  baseUrl?: string;
  /** Silence after which the stream counts as dead and reconnects (default 45000 ms). */
  idleTimeoutMs?: number;
  /** Reconnect delays: exponential from `base` up to `max`, with jitter (default 500, 15000 ms). */
  backoff?: { base?: number; max?: number };
  /** A fetch implementation (tests). */
  fetch?: typeof fetch;
  /** A WebSocket implementation for chats (tests). */
  WebSocket?: typeof WebSocket;
}

export declare class Flow {
  readonly sessionId: string;
  readonly element: HTMLElement;
  /** The last client view received, or null. */
  readonly view: ClientView | null;
  readonly state: ConnectionState;
  on<K extends keyof FlowEvents>(type: K, listener: (detail: FlowEvents[K]) => void): () => void;
  off<K extends keyof FlowEvents>(type: K, listener: (detail: FlowEvents[K]) => void): void;
  /** Sends the browser signal `signal.<name>` to the workflow. */
  signal(name: string, data?: unknown, id?: string): Promise<{ accepted: boolean; duplicate: boolean }>;
  /** Closes the stream and removes everything the flow rendered. */
  unmount(): void;
}

export interface RendererContext {
  view: ClientView | null;
  /** Gangway's origin (for postMessage checks). */
  origin: string;
  signal(name: string, data?: unknown, id?: string): Promise<unknown>;
  /** Opens the session's chat socket (`kind: "chat"`); call `start()` on it. */
  openChat(handlers: ChatHandlers): ChatSocket;
}

/** One frame of the chat: a message with its id (resume point). */
export interface ChatFrame {
  type: "message";
  id: number;
  at: string;
  message:
    | { role: "user"; text: string; client_id: string }
    | { role: "assistant"; text: string; reply_to: number }
    | {
        role: "run";
        run: string;
        reply_to: number;
        command: string;
        state: "started" | "progress" | "ended";
        present?: { kind: string; message?: string | null; url?: string | null; label?: string; features?: string };
        outcome?: Outcome;
        reason?: string;
        output?: unknown;
      };
}

export interface ChatHandlers {
  onMessage?(frame: ChatFrame): void;
  onState?(state: ConnectionState): void;
  onAck?(ack: { client_id: string; id?: number; duplicate?: boolean }): void;
  onError?(error: { message: string; clientId?: string; fatal: boolean }): void;
  onEnded?(ended: { outcome: Outcome; reason: string }): void;
}

/** The chat WebSocket: hello with the secret, resume from the last id, resend unacknowledged lines. */
export declare class ChatSocket {
  constructor(options: ChatHandlers & { url: string; secret: string; WebSocketImpl?: typeof WebSocket; backoff?: { base?: number; max?: number } });
  readonly lastId: number;
  start(): void;
  /** Sends a line; returns its client id (resent after a reconnect until acknowledged). */
  say(text: string): string;
  stop(): void;
}

/** A JSON value as readable DOM (labelled fields, lists). */
export declare function renderValue(value: unknown): HTMLElement;

export interface RendererHandle {
  /** Take a changed presentation of the same kind in place; return false to be replaced. */
  update?(present: Presentation): boolean;
  destroy(): void;
}

export type Renderer = (container: HTMLElement, present: Presentation, ctx: RendererContext) => RendererHandle;

export declare function registerRenderer(kind: string, renderer: Renderer): void;
/** The renderer for a view: a presentation kind, or `connecting`, `working`, `ended`, `unsupported`. */
export declare function selectRenderer(view: ClientView | null, known?: Map<string, Renderer>): string;
export declare function safeUrl(value: unknown, base?: string): string | null;
export declare function sanitizeSvg(markup: string, doc?: Document): SVGElement | null;
export declare function backoff(attempt: number, options?: { base?: number; max?: number; random?: () => number }): number;

export interface StreamEvent {
  id: string;
  event: string;
  data: string;
}

export declare class EventStreamParser {
  lastEventId: string;
  retry: number | null;
  push(text: string): StreamEvent[];
}

export declare class EventStreamClient {
  constructor(options: {
    url: string;
    secret: string;
    onEvent(ev: StreamEvent): boolean;
    onState?(state: ConnectionState): void;
    onFatal?(err: { status: number; code: ErrorCode; message: string }): void;
    fetch?: typeof fetch;
    idleTimeoutMs?: number;
    backoff?: { base?: number; max?: number };
    lastEventId?: string;
  });
  readonly lastEventId: string;
  readonly state: ConnectionState | "idle";
  start(): void;
  stop(): void;
  wake(): void;
}

export declare const Gangway: {
  version: string;
  mount(element: HTMLElement, options: MountOptions): Flow;
  registerRenderer: typeof registerRenderer;
};
export default Gangway;
