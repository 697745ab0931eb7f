import { z } from 'zod';
import { OpenAccountBody } from './schemas';

/** Request and response shapes of the key endpoints (documented in /openapi.json from the same schemas). */

export const OwnerId = OpenAccountBody.shape.ownerId.openapi({ example: 'alice' });
export const KeyId = z
  .string({ error: 'must be a string' })
  .regex(/^(key_[0-9a-f]{16}|env-operator)$/, { error: 'must be a key id as returned by POST /api-keys, e.g. key_4f9c2a7d1e0b3c5a' })
  .openapi({ example: 'key_4f9c2a7d1e0b3c5a' });

export const CreateApiKeyBody = z
  .strictObject({
    role: z.enum(['operator', 'customer'], { error: "must be 'operator' or 'customer'" }),
    ownerId: OwnerId.optional().openapi({
      description: "The owner whose accounts the key may see and move (required with role 'customer', absent with 'operator')",
    }),
  })
  .superRefine((body, ctx) => {
    if (body.role === 'customer' && body.ownerId === undefined)
      ctx.addIssue({ code: 'custom', path: ['ownerId'], message: "is required with role 'customer'" });
    if (body.role === 'operator' && body.ownerId !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['ownerId'],
        message: "must be absent with role 'operator' (an operator acts on every account)",
      });
  })
  .openapi('CreateApiKeyRequest');

export const ApiKeyParams = z.strictObject({ keyId: KeyId });

export const CreatedApiKey = z
  .object({
    keyId: KeyId,
    secret: z.string().openapi({
      description: 'The bearer secret. Shown in this answer only: it is stored as a hash and cannot be shown again.',
      example: 'tsk_4f9c2a7d1e0b3c5a_…',
    }),
    role: z.enum(['operator', 'customer']),
    ownerId: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('CreatedApiKey');

export const ApiKeyView = z
  .object({
    keyId: KeyId,
    role: z.enum(['operator', 'customer']),
    ownerId: z.string().nullable(),
    createdAt: z.string(),
    createdBy: z.string().openapi({ description: 'The key id that created it' }),
    revokedAt: z.string().nullable(),
    revokedBy: z.string().nullable(),
  })
  .openapi('ApiKey');
