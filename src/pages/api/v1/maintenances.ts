/** POST /api/v1/maintenances: announce a maintenance window, as the console's composer does (src/lib/api/operations.ts). */
import { declareIncident } from '../../../core/incidents/incidents.ts';
import { apiIncidentContext, publishedAnswer } from '../../../lib/api/context.ts';
import { endpoint, otherMethods } from '../../../lib/api/endpoint.ts';
import { scheduleMaintenanceOp } from '../../../lib/api/operations.ts';

export const prerender = false;

export const POST = endpoint(scheduleMaintenanceOp, async ({ body }, call) => {
  const result = await declareIncident(apiIncidentContext(call), {
    kind: 'maintenance',
    severity: body.severity,
    title: body.title,
    // the flow sets where it starts (scheduled, or in progress when the window is open) and the services' state
    status: 'scheduled',
    body: body.body,
    components: Object.fromEntries(body.components.map((id) => [id, 'under_maintenance' as const])),
    organisations: body.organisations,
    publicNotice: false,
    confirmPersonalData: body.confirmPersonalData,
    confirmNoRecipients: body.confirmNoRecipients,
    notify: body.notify,
    nextUpdateBy: null,
    breach: null,
    window: { startsAt: new Date(body.window.startsAt), endsAt: new Date(body.window.endsAt) },
  });
  return publishedAnswer(result, call.candor.config.publicUrl);
});

export const ALL = otherMethods(['POST']);
