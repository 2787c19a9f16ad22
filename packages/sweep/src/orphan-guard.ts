/**
 * Preloaded (`node --import`) into each trial's child process: when the worker that started it dies (killed, or
 * its machine gone), the child's stdin pipe closes, and the child stops as after a SIGTERM (it saves a checkpoint
 * and exits) instead of training on unowned while another worker takes the trial over.
 */
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.on('error', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.resume();
// Watching stdin must not keep a finished child alive.
(process.stdin as unknown as { unref?: () => void }).unref?.();
