// Owns: the package's public surface (what `import … from 'realtime-hub-client'` gives).

export { HubClient, DEFAULTS } from './client.js';
export { HubError, Codes } from './errors.js';
export { Room } from './room.js';
