/** The environment that points a test server at the fake providers (and, when given, the test keys). */
import { TEST_KEYS } from './notify.ts';

export interface FakeUrls {
  port: number;
  resend?: { url: string };
  slack?: { url: string };
  twilio?: { url: string; accountSid: string; authToken: string };
  /** seal with TEST_KEYS, so a test can add recipients the server can open */
  testKeys?: boolean;
}

export function providerEnv(fakes: FakeUrls): Record<string, string> {
  return {
    CANDOR_PUBLIC_URL: `http://127.0.0.1:${fakes.port}`,
    ...(fakes.testKeys
      ? { CANDOR_SECRET: TEST_KEYS.secret, CANDOR_ENCRYPTION_KEY: (TEST_KEYS.keys[0] ?? Buffer.alloc(32)).toString('hex') }
      : {}),
    ...(fakes.resend
      ? {
          RESEND_API_KEY: 're_test_key',
          RESEND_BASE_URL: fakes.resend.url,
          CANDOR_EMAIL_FROM: 'Lumenwork Status <status@lumenwork.example>',
          CANDOR_LIMIT_EMAIL: 'unlimited',
        }
      : {}),
    ...(fakes.slack ? { SLACK_API_URL: fakes.slack.url, CANDOR_LIMIT_SLACK: 'unlimited' } : {}),
    ...(fakes.twilio
      ? {
          TWILIO_ACCOUNT_SID: fakes.twilio.accountSid,
          TWILIO_AUTH_TOKEN: fakes.twilio.authToken,
          TWILIO_FROM: '+15005550006',
          TWILIO_API_BASE_URL: fakes.twilio.url,
          CANDOR_LIMIT_SMS: 'unlimited',
        }
      : {}),
  };
}
