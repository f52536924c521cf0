/** Pretrained backbones the studio can fetch (electron/engine/onnx/zoo.ts pins them): the listing every face shows. */
import { z } from 'zod';

export const BackboneListingSchema = z.object({
  /** What `mw-studio backbone fetch NAME` takes. */
  name: z.string(),
  description: z.string(),
  bytes: z.number().int().nonnegative(),
  /** Whether the file is in the user's cache (at `path`). */
  cached: z.boolean(),
  path: z.string(),
});
export type BackboneListing = z.infer<typeof BackboneListingSchema>;

/** Backbone names: what the pinned list uses, so a request can be checked before any lookup. */
export const BackboneNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'backbone name must be a short lower-case name such as resnet18');

/** One exit candidate of a backbone file (mw-studio inspect --backbone): where an exit can sit. */
export const ExitCandidateSchema = z.object({
  /** 1-based; the block after which the exit sits. */
  id: z.number().int().positive(),
  /** The ONNX node whose output the exit reads. */
  node: z.string(),
  /** [C, H, W]. */
  shape: z.array(z.number().int().positive()),
  /** Parameters and multiply-accumulates of the backbone up to this candidate. */
  params: z.number().int().nonnegative(),
  macs: z.number().int().nonnegative(),
  module: z.string().optional(),
});
export type ExitCandidate = z.infer<typeof ExitCandidateSchema>;

/** A backbone file as the New run form shows it: its candidates, the default exits and its input. */
export const BackboneInspectionSchema = z.object({
  candidates: z.array(ExitCandidateSchema),
  defaultExits: z.array(z.number().int().positive()),
  /** [H, W, C] of one input image. */
  inputShape: z.array(z.number().int().positive()),
});
export type BackboneInspection = z.infer<typeof BackboneInspectionSchema>;
