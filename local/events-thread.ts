import { startEventsOutlet, type EventsOutletSettings } from './events-outlet.ts';
import { runPart } from './threads.ts';

/**
 * Events out, for `npm start`, in a thread of its own (see local/threads.ts), as the publisher is a
 * function of its own on AWS: the table's stream read and published to the local bus
 * (local/events-outlet.ts). A crash ends this thread only and a new one starts: it resumes at the
 * saved position, and the bus does not append again what it had appended after it.
 */
runPart<EventsOutletSettings, { eventsFile: string }>(async (settings, write) => {
  const outlet = startEventsOutlet(settings, write);
  return { info: { eventsFile: outlet.eventsFile }, stop: () => outlet.stop() };
});
