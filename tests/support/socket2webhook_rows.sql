-- A socket2webhook database in use: rows as its console (src/services/api.ts) and API
-- (server.js POST /api/companies...) write them, over tests/support/socket2webhook_schema.sql.
-- Names, tokens and URLs are invented. What each row is for (the import's expected answer):
--
--   Acme Cobrancas   active, cluster1     CRM: filters as both filter editors save them
--                                          (EventFilterConfig: numbers from a number input,
--                                          text from a custom field; InteractiveEventFilter:
--                                          the clicked value and a generated description);
--                                          BI: two WhatsApp events; an old deleted webhook;
--                                          not_contains, which lets more through here
--   Beta Telecom     active, cluster2     contains/greater_than with text "60"; a paused
--                                          webhook; an operator nobody has; not_equals
--   Gama Seguros     inactive             an active webhook of an inactive company
--   Delta Varejo     cluster_type NULL    an event type we do not know; a webhook without
--                                          events; a URL without a scheme
--   Epsilon Saude    no api_token         never connected by socket2webhook
--   Zeta Antiga      deleted              left behind, with its webhook

-- server.js treats a NULL cluster_type as a company from before add_cluster_support.sql
-- (`is_legacy`, `cluster_type || 'cluster1'`); the migration's NOT NULL forbids one, so a
-- database that has one added the column by hand. This one did.
ALTER TABLE companies ALTER COLUMN cluster_type DROP NOT NULL;

INSERT INTO events (name, display_name) VALUES
    ('call-history-was-created', 'Histórico de Chamada Criado'),
    ('call-was-connected', 'Chamada Conectada'),
    ('new-message-whatsapp', 'WhatsApp - Nova Mensagem'),
    ('agent-status-changed', 'Status do Agente Alterado'),
    ('campaign-started', 'Campanha Iniciada'),
    ('mailing-list-was-imported', 'Lista de Mailing Importada');

INSERT INTO companies (id, company_3c_id, name, api_token, status, cluster_type, deleted,
                       created_at, updated_at) VALUES
    ('7c041bce-e6ac-4b7c-af5a-43db5c6afb42', '4411', 'Acme Cobrancas',
     'Rk2v9XqLw8TnB3sYc7JdQe1ZpH5mGaUf0oKiVtNx', 'active', 'cluster1', false,
     '2025-03-02 13:05:11-03', '2025-11-20 09:12:40-03'),
    ('4aa763e5-020f-4ae3-b609-fe50133f26fc', '5120', 'Beta Telecom',
     'bT7pQ2wXz9LmN4cV8kR1sD6fG3hJ0aYeUoIiEtWq', 'active', 'cluster2', false,
     '2025-05-14 10:41:00-03', '2025-10-01 16:00:02-03'),
    ('696bdbc6-4890-4849-b780-b5fa710688ad', '3307', 'Gama Seguros',
     'gM4sE8yT2uI6oP0aS3dF7gH1jK5lZ9xCvBnQwRtY', 'inactive', 'cluster1', false,
     '2024-11-08 08:00:00-03', '2025-09-30 18:22:10-03'),
    ('dd15eff3-593e-42f7-810e-0576916b86b1', '2099', 'Delta Varejo',
     'dV1rX5cZ9bN3mQ7wE2tY6uI0oP4aS8dF1gH5jK9l', 'active', NULL, false,
     '2024-06-19 15:30:45-03', '2024-06-19 15:30:45-03'),
    ('804c3713-4219-4ca1-9b59-02b03aca2e32', '', 'Epsilon Saude',
     NULL, 'active', 'cluster1', false,
     '2025-08-01 11:11:11-03', '2025-08-01 11:11:11-03'),
    ('d5911994-857a-4261-a1e6-62e6b1ee9583', '1010', 'Zeta Antiga',
     'zA0qW9eR8tY7uI6oP5aS4dF3gH2jK1lZxCvBnMqW', 'inactive', 'cluster1', true,
     '2023-02-10 09:00:00-03', '2024-01-15 10:00:00-03');

INSERT INTO webhooks (id, company_id, name, url, status, deleted, created_at, updated_at) VALUES
    ('cad01e7e-44ea-410a-8eab-9bf4eefdface', '7c041bce-e6ac-4b7c-af5a-43db5c6afb42',
     'CRM - ligações finalizadas', 'https://crm.acme-cobrancas.com.br/webhooks/3c',
     'active', false, '2025-03-02 13:20:00-03', '2025-11-20 09:12:40-03'),
    ('8308f3a3-746f-41b6-8807-b92a33a60110', '7c041bce-e6ac-4b7c-af5a-43db5c6afb42',
     'WhatsApp BI', 'https://bi.acme-cobrancas.com.br/ingest/whatsapp?source=3c',
     'active', false, '2025-04-10 17:45:30-03', '2025-04-10 17:45:30-03'),
    ('400fc732-fbbd-407a-8501-3fda2c359de1', '7c041bce-e6ac-4b7c-af5a-43db5c6afb42',
     'Integração antiga', 'https://old.acme-cobrancas.com.br/hook',
     'inactive', true, '2025-03-02 13:06:00-03', '2025-06-30 12:00:00-03'),
    ('19db7347-0703-4a30-ad75-f11d3d3edb9a', '7c041bce-e6ac-4b7c-af5a-43db5c6afb42',
     'Exclui listas de teste', 'https://crm.acme-cobrancas.com.br/webhooks/producao',
     'active', false, '2025-07-07 07:07:07-03', '2025-07-07 07:07:07-03'),
    ('b9aee501-b109-475d-a2d9-e1e028b97c06', '4aa763e5-020f-4ae3-b609-fe50133f26fc',
     'Acordos', 'https://n8n.betatelecom.net/webhook/acordos',
     'active', false, '2025-05-14 11:00:00-03', '2025-10-01 16:00:02-03'),
    ('ea8ae1cd-bbb7-4e7f-92cb-f53b7b2b328a', '4aa763e5-020f-4ae3-b609-fe50133f26fc',
     'Pausado para manutenção', 'https://n8n.betatelecom.net/webhook/conectadas',
     'paused', false, '2025-05-20 09:30:00-03', '2025-09-02 10:00:00-03'),
    ('d37e5128-fa80-4b9a-9b09-07b315e214ae', '4aa763e5-020f-4ae3-b609-fe50133f26fc',
     'Somente celulares', 'https://n8n.betatelecom.net/webhook/celulares',
     'active', false, '2025-06-01 14:00:00-03', '2025-06-01 14:00:00-03'),
    ('15d38143-ac15-4ae6-bc9e-a34fe02753b8', '4aa763e5-020f-4ae3-b609-fe50133f26fc',
     'Exceto campanha 195452', 'https://n8n.betatelecom.net/webhook/demais',
     'active', false, '2025-06-02 14:00:00-03', '2025-06-02 14:00:00-03'),
    ('c031cfc8-0355-4555-9953-02c3497c446d', '696bdbc6-4890-4849-b780-b5fa710688ad',
     'Cobrança', 'https://api.gamaseguros.com.br/3c/eventos',
     'active', false, '2024-11-08 08:30:00-03', '2024-11-08 08:30:00-03'),
    ('6b8727e4-10fd-459d-b5ea-a25b803c53a4', 'dd15eff3-593e-42f7-810e-0576916b86b1',
     'Gravações', 'https://hooks.delta-varejo.com.br/gravacoes',
     'active', false, '2024-06-19 16:00:00-03', '2025-02-11 10:20:00-03'),
    ('257257a0-badf-4ec3-9d52-edd6c36423bb', 'dd15eff3-593e-42f7-810e-0576916b86b1',
     'Webhook 1718823600000', 'https://hooks.delta-varejo.com.br/vazio',
     'active', false, '2024-06-19 16:10:00-03', '2024-06-19 16:10:00-03'),
    ('c7ba2a73-bacd-47da-88a0-ea40814304e8', 'dd15eff3-593e-42f7-810e-0576916b86b1',
     'Sem esquema', 'hooks.delta-varejo.com.br/3c',
     'active', false, '2024-06-20 10:00:00-03', '2024-06-20 10:00:00-03'),
    ('939ecb7e-dd90-4ca6-aeaa-ae2b9d792893', '804c3713-4219-4ca1-9b59-02b03aca2e32',
     'Prontuário', 'https://epsilonsaude.com.br/api/ligacoes',
     'active', false, '2025-08-01 11:20:00-03', '2025-08-01 11:20:00-03'),
    ('d866cc6a-1843-4fd7-8794-1e368031850c', 'd5911994-857a-4261-a1e6-62e6b1ee9583',
     'Zeta', 'https://zeta.example.com/hook',
     'active', false, '2023-02-10 09:10:00-03', '2023-02-10 09:10:00-03');

INSERT INTO webhook_events (webhook_id, event_id, filters, created_at)
SELECT s.webhook_id::uuid, e.id, s.filters::jsonb, s.created_at::timestamptz
FROM (VALUES
    -- CRM: EventFilterConfig (status from its number input, the campaign typed into a custom
    -- field, so text) and InteractiveEventFilter (a clicked value, generated description).
    ('cad01e7e-44ea-410a-8eab-9bf4eefdface', 'call-history-was-created', '[
        {"field_path": "callHistory.status", "operator": "equals", "value": 7,
         "description": "Apenas ligações finalizadas com sucesso"},
        {"field_path": "callHistory.campaign.id", "operator": "equals", "value": "201074",
         "description": ""},
        {"field_path": "callHistory.mailing_data.uf", "operator": "equals", "value": "AL",
         "description": "Filtrar callHistory.mailing_data.uf Igual a AL"}]',
     '2025-03-02 13:20:00-03'),
    ('cad01e7e-44ea-410a-8eab-9bf4eefdface', 'call-was-connected', '[]',
     '2025-03-02 13:20:00-03'),
    ('8308f3a3-746f-41b6-8807-b92a33a60110', 'new-message-whatsapp', '[]',
     '2025-04-10 17:45:30-03'),
    ('8308f3a3-746f-41b6-8807-b92a33a60110', 'message-ack-whatsapp', '[
        {"field_path": "message.ack", "operator": "not_equals", "value": "read",
         "description": "Ignorar confirmações de leitura"}]',
     '2025-04-10 17:45:30-03'),
    ('400fc732-fbbd-407a-8501-3fda2c359de1', 'call-history-was-created', '[]',
     '2025-03-02 13:06:00-03'),
    ('19db7347-0703-4a30-ad75-f11d3d3edb9a', 'call-history-was-created', '[
        {"field_path": "callHistory.list.name", "operator": "not_contains", "value": "teste",
         "description": "Sem listas de teste"}]',
     '2025-07-07 07:07:07-03'),
    ('b9aee501-b109-475d-a2d9-e1e028b97c06', 'call-history-was-created', '[
        {"field_path": "callHistory.qualification.name", "operator": "contains",
         "value": "acordo", "description": "Filtrar callHistory.qualification.name Contém acordo"},
        {"field_path": "callHistory.speaking_time", "operator": "greater_than", "value": "60",
         "description": "Mais de um minuto falando"}]',
     '2025-05-14 11:00:00-03'),
    ('ea8ae1cd-bbb7-4e7f-92cb-f53b7b2b328a', 'call-was-connected', '[]',
     '2025-05-20 09:30:00-03'),
    ('d37e5128-fa80-4b9a-9b09-07b315e214ae', 'call-history-was-created', '[
        {"field_path": "callHistory.phone_type", "operator": "starts_with", "value": "mob",
         "description": "Somente celulares"}]',
     '2025-06-01 14:00:00-03'),
    ('15d38143-ac15-4ae6-bc9e-a34fe02753b8', 'call-history-was-created', '[
        {"field_path": "callHistory.campaign.id", "operator": "not_equals", "value": 195452,
         "description": "Filtrar callHistory.campaign.id Diferente de 195452"}]',
     '2025-06-02 14:00:00-03'),
    ('c031cfc8-0355-4555-9953-02c3497c446d', 'call-history-was-created', '[]',
     '2024-11-08 08:30:00-03'),
    ('6b8727e4-10fd-459d-b5ea-a25b803c53a4', 'call-history-was-created', '[
        {"field_path": "callHistory.recorded", "operator": "equals", "value": true,
         "description": ""},
        {"field_path": "callHistory.amd_status", "operator": "equals", "value": "null",
         "description": "Atendidas por pessoas"}]',
     '2024-06-19 16:00:00-03'),
    ('6b8727e4-10fd-459d-b5ea-a25b803c53a4', 'mailing-list-was-imported', '[]',
     '2025-02-11 10:20:00-03'),
    ('c7ba2a73-bacd-47da-88a0-ea40814304e8', 'call-history-was-created', '[]',
     '2024-06-20 10:00:00-03'),
    ('939ecb7e-dd90-4ca6-aeaa-ae2b9d792893', 'call-history-was-created', '[
        {"field_path": "callHistory.number", "operator": "contains", "value": "82988",
         "description": "Filtrar callHistory.number Contém 82988"}]',
     '2025-08-01 11:20:00-03'),
    ('d866cc6a-1843-4fd7-8794-1e368031850c', 'call-history-was-created', '[]',
     '2023-02-10 09:10:00-03')
) AS s (webhook_id, event, filters, created_at)
JOIN events e ON e.name = s.event;

-- Their execution log: what server.js's batch logging wrote (not imported).
INSERT INTO webhook_executions (company_id, webhook_id, event_id, event_type, status, attempts,
                                response_status, phone_number, request_payload, created_at)
SELECT '7c041bce-e6ac-4b7c-af5a-43db5c6afb42', 'cad01e7e-44ea-410a-8eab-9bf4eefdface', e.id,
       e.name, v.status, 1, v.response_status, '5582988628425',
       '{"phone_number": "5582988628425", "campaign_id": 201074}'::jsonb, v.created_at::timestamptz
FROM (VALUES ('success', 200, '2025-11-24 14:06:16-03'),
             ('failed', 502, '2025-11-24 14:09:02-03'),
             ('success', 200, '2025-11-24 14:12:40-03')) AS v (status, response_status, created_at)
JOIN events e ON e.name = 'call-history-was-created';
