// The console's live updates: one EventSource on GET /v1/sessions/changes
// (the operator's session cookie goes with it), which the server feeds as
// sessions change on any node. `ready` comes after each (re)subscription:
// a page reads its data again then, so nothing that changed while the
// stream was down is missed. The browser reconnects by itself after a
// dropped connection; a refused one (401, 429) is retried here, backing off.

/**
 * follow({ onReady, onSession(session), onResync, onDown }) -> stop()
 */
export function follow({ onReady = () => {}, onSession = () => {}, onResync = () => {}, onDown = () => {} }) {
  let source = null;
  let timer = null;
  let delay = 1000;
  let stopped = false;

  function open() {
    if (stopped) return;
    source = new EventSource('/v1/sessions/changes');
    source.addEventListener('ready', () => {
      delay = 1000;
      onReady();
    });
    source.addEventListener('session', (e) => {
      try {
        onSession(JSON.parse(e.data));
      } catch {
        onResync();
      }
    });
    source.addEventListener('resync', () => onResync());
    source.addEventListener('error', () => {
      onDown();
      if (source.readyState === EventSource.CLOSED) {
        // Refused (not a dropped connection): the browser gives up; we do not.
        source.close();
        timer = setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      }
    });
  }

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
  };
}
