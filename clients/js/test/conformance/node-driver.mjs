// Owns: running the conformance agent in this Node process, with the `ws` package's WebSocket.

import WebSocket from 'ws';
import { HubClient } from '../../src/index.js';
import { createAgent } from './agent.js';

export function nodeDriver() {
  let agent = null;
  return {
    env: 'node',
    async begin({ sign }) {
      agent = createAgent({ HubClient, WebSocket, sign: async (spec) => sign(spec) });
    },
    async call(method, ...args) {
      return agent[method](...args);
    },
    async end() {
      agent?.closeAll();
      agent = null;
    },
  };
}
