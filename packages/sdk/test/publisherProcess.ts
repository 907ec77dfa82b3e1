/**
 * A publisher in its own process, for tests that kill it or put it in a network namespace: logs
 * in, publishes the fixtures in a loop, prints "publishing" once its stream is live and then
 * "state <PublisherState> <code>" at every change of its state, "room <RoomStateChangedReason>"
 * at every change of its room's.
 * Usage: node --import tsx publisherProcess.ts <server> <appID> <appSign> <roomID> <userID> <streamID>
 */
import { PublisherState, RoomStateChangedReason } from '@parley/sdk';
import { TestClient, loopFixtures } from './helpers.js';

const [server, appID, appSign, roomID, userID, streamID] = process.argv.slice(2) as [string, string, string, string, string, string];
const client = new TestClient({ appID: Number(appID), appSign, server });
if ((await client.login(roomID, userID)) !== 0) process.exit(1);
client.engine.startPublishingStream(streamID);
await client.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
loopFixtures(client.engine);
process.stdout.write('publishing\n');
client.engine.on('publisherStateUpdate', (_, state, code) => process.stdout.write(`state ${PublisherState[state]} ${code}\n`));
client.engine.on('roomStateChanged', (_, reason) => process.stdout.write(`room ${RoomStateChangedReason[reason]}\n`));
