/**
 * Stop when whoever launched us goes away. `npm run` runs a command through a shell, and a
 * SIGTERM sent to npm alone (a process manager, `docker stop`, an IDE's stop button) reaches npm
 * and that shell, which exits without passing it on (`npm start` execs its command in the shell's
 * place, so npm's SIGINT and SIGTERM reach it; a killed npm passes nothing on): the command would
 * be left running, DynamoDB Local and the ports with it. When the launching process ends, this
 * process is handed to another parent, which is how it notices.
 */
export function onLauncherGone(stop: (why: string) => void, intervalMs = 500): () => void {
  const launcher = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== launcher) {
      clearInterval(timer);
      stop(`the launching process (pid ${launcher}) ended`);
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
