/**
 * How every face names an exit: the block it follows (1-based), or `final` for the network's own
 * output. The API's exportExit, the CLI's --exit and the analyses' exitBlocks all use this; the
 * 0-based position in a network's exit list stays inside the engine and the renderer's tables.
 */
import { z } from 'zod';

export const ExitRefSchema = z.union([
  z.literal('final'),
  z.number({ error: 'exit must be a block number or "final"' }).int().positive(),
]);
export type ExitRef = z.infer<typeof ExitRefSchema>;

interface NamedExit {
  block: number;
  final: boolean;
}

export function exitRefOf(exit: NamedExit): ExitRef {
  return exit.final ? 'final' : exit.block;
}

/** The exit `ref` names among `exits` (the final output answers to its block number too). */
export function findExit<E extends NamedExit>(exits: readonly E[], ref: ExitRef): E | undefined {
  return exits.find((exit) => (ref === 'final' ? exit.final : exit.block === ref));
}

/** "1, 2, final (block 3)": the names a network's exits answer to, for error messages. */
export function describeExitRefs(exits: readonly NamedExit[]): string {
  return exits.map((exit) => (exit.final ? `final (block ${exit.block})` : String(exit.block))).join(', ');
}
