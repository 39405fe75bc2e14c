// Socket names become DNS labels (`<name>.<domain>`), so they follow the label rules.
import { z } from 'zod';

export const SOCKET_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const socketNameSchema = z.string().regex(SOCKET_NAME_PATTERN, 'must be a DNS label: a-z, 0-9 and "-", 1-63 characters, not starting or ending with "-"');
