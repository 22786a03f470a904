// The benchmark's peer: Socket.IO 4 + @socket.io/redis-adapter, configured the way its docs recommend
// for a multi-instance deployment, doing what realtime-hub does for the benchmark's workload:
//   "join" room        → socket.join(room), acked with "joined" room (the load tool waits for the ack)
//   "message" {room,…} → socket.to(room).emit("message", data): every other member, on every instance
// No artificial limits: websocket transport only (no long-polling upgrade dance), no compression, a
// large max message size. Environment: PORT [3000], REDIS_URL [redis://127.0.0.1:6379].
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const port = Number(process.env.PORT || 3000);
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";

async function main() {
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on("error", (err) => console.error("redis:", err.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = http.createServer((req, res) => {
    // Readiness probe for bench/run.sh; Socket.IO handles /socket.io/ itself.
    if (req.url === "/health") {
      res.end("ok");
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  const io = new Server(httpServer, {
    adapter: createAdapter(pubClient, subClient),
    transports: ["websocket"],
    perMessageDeflate: false,
    maxHttpBufferSize: 1e6,
    serveClient: false,
    cors: { origin: "*" },
  });

  io.on("connection", (socket) => {
    socket.on("join", (room) => {
      if (typeof room !== "string") return;
      socket.join(room);
      socket.emit("joined", room);
    });
    socket.on("message", (data) => {
      if (data && typeof data.room === "string") socket.to(data.room).emit("message", data);
    });
  });

  httpServer.listen(port, "127.0.0.1", () => console.log(`socketio peer listening on 127.0.0.1:${port}`));
  const stop = () => {
    io.close();
    Promise.allSettled([pubClient.quit(), subClient.quit()]).then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
