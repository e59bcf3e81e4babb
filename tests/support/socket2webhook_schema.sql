-- socket2webhook's database, as `relay import socket2webhook` finds it: our own DDL,
-- reconstructed from the repository github.com/wosiak/socket2webhook (commit b889b30): its
-- supabase/migrations/*.sql and the columns server/server.js, src/services/api.ts and
-- src/types/index.ts read and write. None of its code is copied here.
--
-- Its migrations only ALTER tables that Supabase's dashboard created, so the file has two
-- parts, split by the `-- == part 2` line (tests/support/socket2webhook_db.py):
--
--   part 1, the tables as they were before any migration file ran;
--   part 2, what each migration file adds, in our words (one block per file).
--
-- When their repository is on disk, the test database is built from part 1 and then THEIR
-- migration files (those that run on plain PostgreSQL 15), and a test checks that part 2
-- gives the same columns, defaults, constraints and indexes. Left out, as Supabase-only or
-- not runnable:
--   create_auth_system.sql        users/user_sessions, RLS policies on Supabase's auth.uid()
--   create_auth_system_simple.sql, auth_fix_final.sql, fix_rls_policies.sql,
--   add_api_token_to_users.sql, update_admin_plaintext.sql
--                                 their console's users (not imported), RLS, pgcrypto
--   create_rpc_functions_for_company_executions.sql, create_rpc_functions_for_metrics.sql
--                                 functions granted to Supabase's anon/authenticated roles
--   fix_webhook_executions_rls.sql, fix_webhook_executions_dashboard_access.sql
--                                 RLS policies for the authenticated/service_role roles
--   create_batch_cleanup_function.sql
--                                 its PL/pgSQL does not compile on any PostgreSQL
--                                 (`GET DIAGNOSTICS x = x + ROW_COUNT`)
-- (cleanup_all_executions.sql and emergency_cleanup_executions.sql only read and delete
-- execution rows; they run, before any row exists.)

-- == part 1: the tables before the migrations

-- A company: its 3C Plus token (socket.io `query.token`), status active/inactive. `deleted`
-- is read by server.js's /check-all-webhooks only (src/services/api.ts deletes for real).
CREATE TABLE companies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_3c_id varchar(255) DEFAULT '',
    name varchar(255) NOT NULL,
    api_token varchar(255),
    status varchar(20) NOT NULL DEFAULT 'active',
    deleted boolean NOT NULL DEFAULT false,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

-- The event catalog; add_message_ack_whatsapp_event.sql inserts with ON CONFLICT (name).
CREATE TABLE events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(100) NOT NULL UNIQUE,
    display_name varchar(255),
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

-- A webhook: `status` is active/inactive/paused and only `active` ones are delivered to;
-- there is no is_active column (api.ts derives `is_active` from status).
CREATE TABLE webhooks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name varchar(255),
    url text NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'active',
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

-- A webhook's subscription to one event type (nothing keeps a pair from repeating).
CREATE TABLE webhook_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    created_at timestamptz DEFAULT now()
);

-- Their execution log (not imported: the import says how many rows stay behind).
CREATE TABLE webhook_executions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id uuid REFERENCES companies (id) ON DELETE CASCADE,
    webhook_id uuid REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id uuid REFERENCES events (id) ON DELETE SET NULL,
    status varchar(20) NOT NULL DEFAULT 'pending',
    attempts integer DEFAULT 0,
    max_attempts integer DEFAULT 3,
    payload jsonb,
    response_status integer,
    response_body text,
    error_message text,
    last_attempt timestamptz,
    next_retry timestamptz,
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);

-- == part 2: what the migration files add

-- add_cluster_support.sql: which 3C Plus cluster the company's socket lives on.
ALTER TABLE companies ADD COLUMN cluster_type varchar(20) NOT NULL DEFAULT 'cluster1';
ALTER TABLE companies ADD CONSTRAINT companies_cluster_type_check
    CHECK (cluster_type IN ('cluster1', 'cluster2'));
CREATE INDEX idx_companies_cluster_type ON companies (cluster_type);

-- add_event_filters.sql: the subscription's filters, a JSON array.
ALTER TABLE webhook_events ADD COLUMN filters jsonb DEFAULT '[]'::jsonb;
CREATE INDEX idx_webhook_events_filters ON webhook_events USING gin (filters);

-- add_soft_delete_webhooks.sql: deleting a webhook marks it.
ALTER TABLE webhooks ADD COLUMN deleted boolean DEFAULT false;
CREATE INDEX idx_webhooks_deleted ON webhooks (deleted);
CREATE INDEX idx_webhooks_company_deleted ON webhooks (company_id, deleted);

-- add_phone_number_to_executions.sql (server/apply_migration.sql is the same).
ALTER TABLE webhook_executions ADD COLUMN phone_number varchar(20);
CREATE INDEX idx_webhook_executions_phone_number ON webhook_executions (phone_number)
    WHERE phone_number IS NOT NULL;

-- add_searchable_data_to_executions.sql.
ALTER TABLE webhook_executions ADD COLUMN request_payload jsonb;
ALTER TABLE webhook_executions ADD COLUMN event_type varchar(100);
CREATE INDEX idx_webhook_executions_request_payload_gin ON webhook_executions
    USING gin (request_payload);
CREATE INDEX idx_webhook_executions_event_type ON webhook_executions (event_type)
    WHERE event_type IS NOT NULL;
CREATE INDEX idx_webhook_executions_company_event_type ON webhook_executions
    (company_id, event_type, created_at DESC);

-- add_message_ack_whatsapp_event.sql: two WhatsApp event types.
INSERT INTO events (name, display_name) VALUES
    ('message-ack-whatsapp', 'WhatsApp - Confirmação de Mensagem (ACK)'),
    ('message-error-whatsapp', 'WhatsApp - Erro no Envio de Mensagem')
ON CONFLICT (name) DO NOTHING;
