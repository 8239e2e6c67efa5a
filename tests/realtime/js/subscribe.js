// pusher-js against the gateway: authorise through /broadcasting/auth with the API key,
// subscribe to the key's channel, print one JSON line per event until a job is done or failed.
// Usage: node subscribe.js <ws host> <ws port> <app key> <auth endpoint> <api key> <channel>
const Pusher = require("pusher-js");

const [host, port, appKey, authEndpoint, apiKey, channelName] = process.argv.slice(2);
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const pusher = new Pusher(appKey, {
  cluster: "mt1",
  wsHost: host,
  wsPort: Number(port),
  forceTLS: false,
  enabledTransports: ["ws"],
  disableStats: true,
  channelAuthorization: {
    endpoint: authEndpoint,
    transport: "ajax",
    headers: { Authorization: `Bearer ${apiKey}` },
  },
});

const channel = pusher.subscribe(channelName);
channel.bind("pusher:subscription_succeeded", () => print({ subscribed: pusher.connection.socket_id }));
channel.bind("pusher:subscription_error", (error) => {
  print({ subscription_error: error.status ?? error.type ?? "error" });
  pusher.disconnect();
});
channel.bind("request.status.updated", (event) => {
  print({ event });
  if (event.status === "done" || event.status === "error") pusher.disconnect();
});
setTimeout(() => {
  print({ timeout: true });
  pusher.disconnect();
  process.exit(2);
}, 30000).unref();
