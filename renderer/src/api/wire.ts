/**
 * Schemas for what arrives over serve mode's socket. shared/api.ts defines the wire types
 * (WireMessage, StudioEvent) without schemas; these compose shared/'s own record schemas, and
 * the `satisfies` clauses keep them in step with those types.
 */
import { z } from 'zod';
import type { StudioEvent, WireMessage } from '../../../shared/api.js';
import {
  BatchMetricsSchema,
  EpochMetricsSchema,
  ExitReportSchema,
  RunStartSchema,
  RunStateSchema,
  RunSummarySchema,
  type RunEvent,
} from '../../../shared/metrics.js';

export const RunEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), start: RunStartSchema }),
  BatchMetricsSchema,
  EpochMetricsSchema,
  z.object({ type: z.literal('evaluating'), what: z.string() }),
  z.object({ type: z.literal('evaluated'), exits: z.array(ExitReportSchema) }),
  z.object({ type: z.literal('status'), state: RunStateSchema }),
  z.object({ type: z.literal('finished'), summary: RunSummarySchema }),
]) satisfies z.ZodType<RunEvent>;

export const StudioEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run'), events: z.array(RunEventSchema) }),
  z.object({ type: z.literal('trainer-crashed'), message: z.string(), run: z.string().optional() }),
]) satisfies z.ZodType<StudioEvent>;

const callId = z.number().int().nonnegative();

export const WireMessageSchema = z.union([
  z.object({ id: callId, ok: z.literal(true), result: z.unknown() }),
  z.object({ id: callId, ok: z.literal(false), error: z.string() }),
  z.object({ event: StudioEventSchema }),
]) satisfies z.ZodType<WireMessage>;
