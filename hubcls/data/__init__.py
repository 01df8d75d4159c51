"""hubcls.data"""
