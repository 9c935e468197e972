/**
 * An undici interceptor that keeps a `Connection: close` answer from crashing the process.
 *
 * undici 7 pauses its HTTP/1 parser when a response body is not read fast enough (backpressure).
 * If that pause falls on the last bytes of a body whose server then closes the connection
 * (`Connection: close`, as Versity Gateway and many load balancers answer), the socket's `end`
 * handler calls `Parser.finish()` on a paused parser and trips `assert(!this.paused)` — an
 * uncatchable AssertionError that kills the gateway or the copier
 * (https://github.com/nodejs/undici/issues/5360; fixed only in undici 8, which needs Node 22).
 *
 * The socket can reach its end while the parser is paused only when every byte has already
 * been read, i.e. when the pause came with the body's final chunk. So this interceptor counts
 * body bytes against Content-Length and ignores a pause requested on the chunk that completes
 * the body: that chunk is already in the consumer's buffer, nothing more is read, so memory
 * stays bounded. Pauses anywhere earlier still apply, keeping backpressure intact.
 */

import { Pool, type Dispatcher } from "undici";

type Controller = Dispatcher.DispatchController;
type Handler = Dispatcher.DispatchHandler;

/** Returns the interceptor; use as `new Pool(origin, opts).compose(eofPauseGuard())`. */
export function eofPauseGuard(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => dispatch(opts, new EofPauseGuardHandler(handler));
}

/** Wraps one request's handler; see the module comment for why. */
class EofPauseGuardHandler implements Handler {
  readonly #inner: Handler;
  /** Body bytes still expected per Content-Length, or undefined when the length is unknown. */
  #remaining: number | undefined;
  #controller: Controller | undefined;
  #guarded: Controller | undefined;

  constructor(inner: Handler) {
    this.#inner = inner;
  }

  /** A view of the real controller whose pause() is ignored once the body is complete. */
  #view(controller: Controller): Controller {
    if (this.#controller !== controller || this.#guarded === undefined) {
      this.#controller = controller;
      // Every member delegates to the real controller (whose getters read private fields, so
      // the view cannot simply inherit from it); only pause() is filtered.
      this.#guarded = {
        pause: () => {
          if (this.#remaining !== 0) controller.pause();
        },
        resume: () => controller.resume(),
        abort: (reason: Error) => controller.abort(reason),
        get paused() {
          return controller.paused;
        },
        get aborted() {
          return controller.aborted;
        },
        get reason() {
          return controller.reason;
        },
        get rawHeaders() {
          return controller.rawHeaders;
        },
        get rawTrailers() {
          return controller.rawTrailers;
        },
      };
    }
    return this.#guarded;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#inner.onRequestStart?.(this.#view(controller), context);
  }

  onRequestUpgrade(
    controller: Controller,
    statusCode: number,
    headers: Parameters<NonNullable<Handler["onRequestUpgrade"]>>[2],
    socket: Parameters<NonNullable<Handler["onRequestUpgrade"]>>[3],
  ): void {
    this.#inner.onRequestUpgrade?.(this.#view(controller), statusCode, headers, socket);
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: Parameters<NonNullable<Handler["onResponseStart"]>>[2],
    statusMessage?: string,
  ): void {
    const length = headers["content-length"];
    const parsed = typeof length === "string" ? Number(length) : NaN;
    this.#remaining = Number.isSafeInteger(parsed) && parsed >= 0 ? parsed : undefined;
    this.#inner.onResponseStart?.(this.#view(controller), statusCode, headers, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#remaining !== undefined)
      this.#remaining = Math.max(0, this.#remaining - chunk.length);
    this.#inner.onResponseData?.(this.#view(controller), chunk);
  }

  onResponseEnd(
    controller: Controller,
    trailers: Parameters<NonNullable<Handler["onResponseEnd"]>>[1],
  ): void {
    this.#inner.onResponseEnd?.(this.#view(controller), trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.#inner.onResponseError?.(this.#view(controller), error);
  }
}

/** A keep-alive undici Pool for `origin` with {@link eofPauseGuard} applied: use for every pool. */
export function createGuardedPool(origin: string, options: Pool.Options): Dispatcher {
  return new Pool(origin, options).compose(eofPauseGuard());
}
