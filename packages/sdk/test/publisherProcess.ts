/**
 * A publisher in its own process, for tests that kill it: logs in, publishes the fixtures in a
 * loop and prints "publishing" once its stream is live.
 * Usage: node --import tsx publisherProcess.ts <server> <appID> <appSign> <roomID> <userID> <streamID>
 */
import { PublisherState } from '@parley/sdk';
import { TestClient, loopFixtures } from './helpers.js';

const [server, appID, appSign, roomID, userID, streamID] = process.argv.slice(2) as [string, string, string, string, string, string];
const client = new TestClient({ appID: Number(appID), appSign, server });
if ((await client.login(roomID, userID)) !== 0) process.exit(1);
client.engine.startPublishingStream(streamID);
await client.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
loopFixtures(client.engine);
process.stdout.write('publishing\n');
