DROP TABLE ask_user_requests;
