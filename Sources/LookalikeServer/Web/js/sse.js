// Server-sent events read from a fetch body (the progress streams of jobs and tunings). Pure: no DOM, no state.

/**
 * An incremental parser of a text/event-stream. Give it decoded text as it arrives; it calls
 * onEvent({event, data}) for each complete event (event defaults to "message"). Comments, `id`
 * and `retry` fields are ignored.
 */
export function sseParser(onEvent) {
  let buffer = '';
  let event = '';
  let data = [];
  let pendingCR = false; // a chunk ended in \r: a \n starting the next one belongs to it
  return function push(text) {
    if (pendingCR && text.startsWith('\n')) text = text.slice(1);
    pendingCR = text.endsWith('\r');
    buffer += text;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // the last piece is an unfinished line
    for (const line of lines) {
      if (line === '') {
        if (data.length) onEvent({ event: event || 'message', data: data.join('\n') });
        event = '';
        data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  };
}
