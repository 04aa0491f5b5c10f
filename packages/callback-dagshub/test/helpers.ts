// Test helpers shared by every plugin's tests live in @trainkit/testkit.
export {
  captureLogger,
  deliveryContext,
  filesUnder,
  type CapturedLogger as Captured,
} from "@trainkit/testkit";
